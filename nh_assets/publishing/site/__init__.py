"""The NeuroHelix site: every day's report, notes and analyses as a static, searchable website.

``site`` (an unpartitioned asset downstream of every day's outputs) keeps its own copy of each
day's small input under ``NH_DATA_ROOT/site_src/`` and renders the site incrementally into
``NH_SITE_DIR``; ``site_deployment`` uploads it with wrangler and verifies the deployment. One
concept per module: ``day_input`` (what one day is), ``collect`` (from the instance and the data
tree to day inputs), ``html_policy`` and ``markdown_render`` (model text to safe HTML), ``pages``
(templates), ``site_build`` (incremental build and atomic swap), ``search_index`` (Pagefind),
``site_asset``, ``pages_wrangler`` (deploy + verify), ``report_ready`` (the notification),
``deployment`` and ``definitions``.
"""
