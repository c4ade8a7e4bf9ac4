"""Pytest fixtures for the real PostgreSQL server (``postgres_server``): one cluster per session,
one fresh database per test."""

from __future__ import annotations

import pytest

from nh_assets_tests.support.postgres_server import PostgresServer, running_postgres


@pytest.fixture(scope="session")
def postgres_server():
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()
