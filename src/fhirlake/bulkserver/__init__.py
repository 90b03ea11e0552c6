"""fhirlake.bulkserver: an embedded FHIR Bulk Data server for demos and tests.

It serves a folder of ``<Type>.ndjson`` (or ``.ndjson.gz``) files with the full async pattern
(kick-off at system, Patient and Group level; ``_type``, ``_since``, ``_elements``; status with
``Retry-After`` and ``X-Progress``; a manifest; gzip files; DELETE; ``deleted[]``), optional
SMART Backend Services auth, and injectable faults (:class:`Faults`) so that a client can be
tested against a real HTTP peer that misbehaves the way hospital servers do.

It is independent of the client (``fhirlake.bulk``) and binds to 127.0.0.1 by default::

    with BackgroundServer(BulkServerConfig(data_dir=Path("data"), faults=Faults(file_500=2))) as s:
        print(s.base_url)   # http://127.0.0.1:<port>/fhir
"""

from __future__ import annotations

from fhirlake.bulkserver._app import RequestRecord, ServerState, create_app
from fhirlake.bulkserver._config import BulkServerConfig, ClientRegistration, Faults, ServerAuth
from fhirlake.bulkserver._run import BackgroundServer, serve

__all__ = [
    "BackgroundServer",
    "BulkServerConfig",
    "ClientRegistration",
    "Faults",
    "RequestRecord",
    "ServerAuth",
    "ServerState",
    "create_app",
    "serve",
]
