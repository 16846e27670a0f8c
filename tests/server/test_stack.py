"""cairn on a real Milvus server whose storage is S3: the local stack, features, security, restart, bulk import."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from tests.netns_helpers import external_addresses, listening_in_namespace_of
from tests.server.stack_helpers import server_settings, unique

from cairn import Cairn
from cairn.catalog import RowSet
from cairn.catalog.janitor import sweep
from cairn.demo import QUESTIONS as DEMO_QUESTIONS
from cairn.errors import EngineError, IndexUnavailable, InsecureEngine
from cairn.stack import LocalStack

pytestmark = pytest.mark.server


def _write_docs(folder: Path, count: int, topic: str = "turbine") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{topic}-{i:03d}.md").write_text(
            f"# {topic.title()} note {i}\n\nThe {topic} unit {i} is serviced every {i + 3} weeks by crew {i % 7}.\n"
        )
    return folder


def test_stack_up_prints_working_exports_and_binds_its_stores_to_loopback(
    stack: tuple[LocalStack, dict[str, str]],
) -> None:
    local, exports = stack
    for name in ("CAIRN_MILVUS_URI", "CAIRN_MILVUS_TOKEN", "CAIRN_STORE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"):
        assert exports[name], name
    assert exports["CAIRN_MILVUS_URI"].startswith("http://127.0.0.1:")
    assert exports["CAIRN_MILVUS_TOKEN"].startswith("cairn:")  # a dedicated user, never root
    lines = LocalStack.export_lines(exports)
    assert lines.count("export ") == len(exports)
    # The lines are valid shell: eval them and read one back.
    echoed = subprocess.run(
        ["bash", "-c", lines + 'printf %s "$CAIRN_MILVUS_TOKEN"'], capture_output=True, text=True, check=True
    )
    assert echoed.stdout == exports["CAIRN_MILVUS_TOKEN"]
    status = local.status()
    assert status.s3_running
    assert status.milvus_running
    assert status.milvus_healthy
    # `up` again is idempotent: same processes, same settings.
    assert local.up() == exports
    state = local._load()
    assert state is not None
    assert state.milvus_pid
    assert state.s3_pid
    # Both servers run in a network namespace of their own: the host sees only the holder's three listeners.
    assert not state.host_network, state.host_network_reason
    assert state.network_pid
    assert "private namespace" in (status.network or "")
    public = {state.s3_port, state.milvus_ports["proxy_port"], state.milvus_ports["metrics_port"], state.postgres_port}
    holder = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(state.network_pid).net_connections("tcp")}
    assert holder == {("127.0.0.1", port) for port in public}
    inside = listening_in_namespace_of(state.milvus_pid)
    internal = ("etcd_port", "root_coord_port", "query_node_port", "data_node_port", "proxy_internal_port")
    assert {state.milvus_ports[name] for name in internal} <= {port for _, port in inside}  # they exist, in there
    assert ("::", state.milvus_ports["query_node_port"]) in inside  # ... on every interface (Milvus 2.3)
    on_host = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert not {port for _, port in inside} - public & on_host
    for address in external_addresses():
        for _, port in inside:
            with pytest.raises(ConnectionRefusedError), socket.create_connection((address, port), timeout=2):
                pass


def test_a_stack_whose_namespace_holder_died_comes_back_whole_with_the_same_settings(
    stack: tuple[LocalStack, dict[str, str]],
) -> None:
    local, exports = stack
    before = local._load()
    assert before is not None
    assert before.network_pid
    os.kill(before.network_pid, signal.SIGKILL)  # the forwarders are gone: nothing reaches the servers
    deadline = time.monotonic() + 10
    while local.status().milvus_healthy and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not local.status().milvus_healthy
    assert local.up() == exports  # a new namespace, the servers restarted in it, the same ports and credentials
    after = local._load()
    assert after is not None
    assert after.network_pid != before.network_pid
    assert not psutil.pid_exists(before.milvus_pid or 0)
    assert local.status().milvus_healthy


def test_cairn_on_the_server_detects_its_features_and_falls_back_to_dense_with_one_warning(
    server_cairn: Cairn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("features")
    report = server_cairn.ingest([_write_docs(tmp_path / "docs", 5)], collection=name)
    assert report.ingested == 5
    assert not report.failed
    info = server_cairn.collection_info(name)
    assert info.engine == "milvus-server"
    assert info.engine_version.startswith("v2.3.5")
    assert "bm25" not in info.features
    assert "hybrid" not in info.features
    assert {"aliases", "partition_key", "consistency_per_read"} <= set(info.features)
    with caplog.at_level(logging.WARNING, logger="cairn.index.milvus"):
        hybrid = server_cairn.search("how often is turbine unit 3 serviced", collection=name, mode="hybrid")
        keyword = server_cairn.search("turbine unit 4", collection=name, mode="keyword")
    assert hybrid.hits
    assert keyword.hits
    assert hybrid.hits[0].source.endswith("turbine-003.md")
    warnings = [r for r in caplog.records if "no BM25" in r.getMessage()]
    assert len(warnings) == 1  # once per connection, not per query
    assert any("no BM25" in w for w in hybrid.warnings)


def test_tenant_is_the_partition_key_and_reads_are_strong_right_after_deletes(
    server_cairn: Cairn, tmp_path: Path
) -> None:
    name = unique("tenants")
    docs = _write_docs(tmp_path / "docs", 3, "pump")
    server_cairn.ingest([docs], collection=name, tenant="acme")
    described = server_cairn.index.client.describe_collection(server_cairn.index.engine_name(name))
    tenant_field = next(f for f in described["fields"] if f["name"] == "tenant")
    assert tenant_field.get("is_partition_key") is True
    # Remove a document and search at once: the very next read must not return it.
    gone = next(d for d in server_cairn.documents(collection=name) if d.source.endswith("pump-001.md"))
    server_cairn.remove_documents([gone.doc_id], collection=name)
    assert server_cairn.index._read_consistency() == {"consistency_level": "Strong"}
    hits = server_cairn.search("pump unit 1 serviced every 4 weeks", collection=name, mode="dense").hits
    assert hits
    assert all(h.doc_id != gone.doc_id for h in hits)
    # Its rows stay hidden for the retire grace (searches in other processes may still be reading them),
    # then the janitor deletes them.
    assert RowSet(doc_id=gone.doc_id, version=1) in server_cairn.catalog.hidden_rows(name)
    state = server_cairn.catalog.collection(name)
    assert state is not None
    sweep(
        server_cairn.catalog,
        state,
        delete_rows=server_cairn.index.delete_rows,
        readers=server_cairn.readers,
        grace_s=0,
        stale_after_s=3600,
    )
    assert server_cairn.catalog.hidden_rows(name) == []
    assert server_cairn.index.count(name) == sum(
        1 for h in server_cairn.index.indexed_chunks(name).values() if h.doc_id != gone.doc_id
    )


def test_a_changed_acl_keeps_the_document_findable_in_its_tenant(server_cairn: Cairn, tmp_path: Path) -> None:
    """On Milvus 2.3 an upsert put rows in the wrong partition (milvus#30607): an ACL change made the document
    vanish from every tenant-filtered search. Its rows are rewritten by delete and insert there instead."""
    from cairn.auth import Principal

    name = unique("acl")
    docs = _write_docs(tmp_path / "docs", 3, "boiler")
    server_cairn.ingest([docs], collection=name, tenant="acme", allow=["hr"])
    engineer = Principal(key_id="e" * 16, role="reader", tenant="acme", groups=["eng"])
    target = next(d for d in server_cairn.documents(collection=name) if d.source.endswith("boiler-002.md"))
    assert server_cairn.search("boiler unit 2", collection=name, mode="dense", principal=engineer).hits == []

    server_cairn.set_access([target.doc_id], allow=["hr", "eng"], tenant="acme", collection=name)

    hits = server_cairn.search("boiler unit 2", collection=name, mode="dense", principal=engineer).hits
    assert {h.doc_id for h in hits} == {target.doc_id}
    assert server_cairn.index.count(name) == sum(d.chunks for d in server_cairn.documents(collection=name))


def test_reindex_switches_the_collection_alias_to_the_new_generation(server_cairn: Cairn, tmp_path: Path) -> None:
    name = unique("alias")
    server_cairn.ingest([_write_docs(tmp_path / "docs", 3, "valve")], collection=name)
    index = server_cairn.index
    assert index.alias_target(name) == index.engine_name(name)
    report = server_cairn.reindex("all-MiniLM-L6-v2", collection=name)
    assert report.generation == 1
    assert index.alias_target(name) == index.engine_name(f"{name}_G1")
    assert not index.client.has_collection(index.engine_name(name))  # the old generation is gone
    hits = server_cairn.search("valve unit 2", collection=name, mode="dense").hits
    assert hits
    assert hits[0].source.endswith("valve-002.md")


def test_segments_are_written_to_the_s3_bucket_after_a_flush(
    stack: tuple[LocalStack, dict[str, str]], server_cairn: Cairn, tmp_path: Path
) -> None:
    local, _ = stack
    name = unique("segments")
    server_cairn.ingest([_write_docs(tmp_path / "docs", 4, "boiler")], collection=name)
    engine = server_cairn.index.engine_name(name)
    collection_id = str(server_cairn.index.client.describe_collection(engine)["collection_id"])
    server_cairn.index.client.flush(engine)
    client = local.s3_client()
    keys = [
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="milvus", Prefix="milvus/insert_log/")
        for obj in page.get("Contents", [])
    ]
    assert any(f"/insert_log/{collection_id}/" in key for key in keys), keys[:5]


def test_cairn_refuses_a_server_that_still_accepts_root_milvus_unless_insecure(
    stack: tuple[LocalStack, dict[str, str]], stack_env: dict[str, str], tmp_path: Path
) -> None:
    local, exports = stack
    from pymilvus import MilvusClient

    root_password = local.root_token().split(":", 1)[1]
    admin = MilvusClient(uri=exports["CAIRN_MILVUS_URI"], token=local.root_token())
    admin.update_password("root", root_password, "Milvus")
    try:
        with pytest.raises(InsecureEngine, match=r"root:Milvus.*--insecure"):
            Cairn(server_settings(stack_env, tmp_path / "a")).index  # noqa: B018 - opening is the test
        insecure = Cairn(server_settings(stack_env, tmp_path / "b", milvus_insecure=True))
        assert insecure.index.engine == "milvus-server"
        insecure.close()
    finally:
        MilvusClient(uri=exports["CAIRN_MILVUS_URI"], token="root:Milvus").update_password(
            "root", "Milvus", root_password
        )
    # The stack's own user cannot administer users: it has what cairn needs, not more.
    cairn_user = MilvusClient(uri=exports["CAIRN_MILVUS_URI"], token=exports["CAIRN_MILVUS_TOKEN"])
    with pytest.raises(Exception, match="permission"):
        cairn_user.create_user("intruder", "password-123")


def test_a_wrong_password_is_a_clear_engine_error(stack_env: dict[str, str], tmp_path: Path) -> None:
    settings = server_settings(stack_env, tmp_path / "home", milvus_token="cairn:not-the-password")
    with pytest.raises(EngineError, match="CAIRN_MILVUS_TOKEN"):
        Cairn(settings).index  # noqa: B018 - opening is the test


def test_a_collection_left_without_indexes_by_a_stopped_creator_is_a_clear_error(
    stack_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that finds a collection without indexes waits for its creator; when none come, it says why."""
    from pymilvus import DataType

    import cairn.index.milvus as milvus

    monkeypatch.setattr(milvus, "_INDEX_WAIT_S", 1.0)
    index = milvus.open_index(server_settings(stack_env, tmp_path / "home"))
    collection = unique("unindexed")
    schema = index.client.create_schema(auto_id=False)
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=4)
    index.client.create_collection(index.engine_name(collection), schema=schema)  # as a creator that stopped here
    started = time.monotonic()
    with pytest.raises(EngineError, match="has had no index for 1 s: the process that created it stopped"):
        index.ensure_collection(collection, 4)
    assert 1.0 <= time.monotonic() - started < 10.0


def test_large_batches_go_through_bulk_import_from_s3(
    stack: tuple[LocalStack, dict[str, str]], stack_env: dict[str, str], tmp_path: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    local, _ = stack
    cairn = Cairn(server_settings(stack_env, tmp_path / "home", bulk_insert_min_rows=20))
    cairn._embedder = embedder
    try:
        name = unique("bulk")
        index = cairn.index
        assert index.bulk is not None
        before = _import_tasks(index)
        cairn.ingest([_write_docs(tmp_path / "docs", 30, "chiller")], collection=name)
        small = _import_tasks(index)
        assert small == before  # one document per batch: far below the threshold, plain inserts
        rows = cairn.index.count(name)
        inserted = cairn.search("chiller unit 17", collection=name, mode="dense").hits[0]
        rebuilt = cairn.rebuild(collection=name)
        assert rebuilt == rows
        assert _import_tasks(index) > small  # the rebuild's batch went through bulk import
        assert cairn.index.count(name) == rows
        hits = cairn.search("chiller unit 17", collection=name, mode="dense").hits
        assert hits[0].source.endswith("chiller-017.md")
        # Imported from Parquet: the JSON fields (location, metadata) and the text arrive as inserted ones did.
        assert (hits[0].chunk_id, hits[0].text, hits[0].location, hits[0].metadata) == (
            inserted.chunk_id,
            inserted.text,
            inserted.location,
            inserted.metadata,
        )
        staged = local.s3_client().list_objects_v2(Bucket="milvus", Prefix="cairn-bulk/").get("KeyCount", 0)
        assert staged == 0  # staging files are deleted after the import
    finally:
        cairn.close()


def _import_tasks(index) -> int:  # type: ignore[no-untyped-def]
    """How many bulk-import tasks the server has run (through the ORM API, the only one a 2.3 server speaks)."""
    import warnings

    from pymilvus import connections, utility

    alias = "cairn-test-tasks"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API.*")
        if not connections.has_connection(alias):
            connections.connect(alias=alias, uri=index.uri, token=index.token)
        return len(utility.list_bulk_insert_tasks(limit=0, using=alias))


def test_every_acknowledged_row_survives_a_milvus_restart_mid_run(
    stack: tuple[LocalStack, dict[str, str]], stack_env: dict[str, str], tmp_path: Path
) -> None:
    local, _ = stack
    name = unique("restart")
    home = tmp_path / "home"
    settings = server_settings(stack_env, home)
    env = {
        **{k: v for k, v in stack_env.items()},
        "CAIRN_HOME": str(home),
        "CAIRN_MILVUS_URI": stack_env["CAIRN_MILVUS_URI"],
        "CAIRN_MILVUS_TOKEN": stack_env["CAIRN_MILVUS_TOKEN"],
        "CAIRN_STORE": settings.store or "",
        "CAIRN_S3_ADDRESSING_STYLE": "path",
        "PATH": str(Path(sys.executable).parent),
        # Small commit batches, so documents are acknowledged one after another while the restart happens.
        "CAIRN_INGEST_BATCH_CHUNKS": "4",
    }
    first = _write_docs(tmp_path / "first", 20, "compressor")
    second = _write_docs(tmp_path / "second", 240, "generator")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cairn"), "ingest", str(first), "--collection", name, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # A second ingest runs; once it has acknowledged some documents, the Milvus process is stopped and started.
    running = subprocess.Popen(
        [str(Path(sys.executable).parent / "cairn"), "ingest", str(second), "--collection", name, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    observer = Cairn(server_settings(stack_env, home, store=settings.store))
    try:
        deadline = time.monotonic() + 240
        # The catalog is shared by the processes: what the ingest process acknowledged is read here.
        while len(acknowledged := _live_documents(observer, name)) < 25:
            assert running.poll() is None, "the ingest finished before the restart could interrupt it"
            assert time.monotonic() < deadline, "the second ingest acknowledged nothing in time"
            time.sleep(0.2)
        local.restart_milvus()
        running.communicate(timeout=300)
        # Every document acknowledged before the restart has all its rows in the restarted server.
        observer.close()
        observer = Cairn(server_settings(stack_env, home, store=settings.store))
        # Reads fail fast (503 index_unavailable) until the restarted server has loaded the collection again.
        deadline = time.monotonic() + 180
        while True:
            try:
                indexed = observer.index.indexed_chunks(name)
                break
            except IndexUnavailable:
                assert time.monotonic() < deadline, "the restarted Milvus did not serve the collection in 3 minutes"
                time.sleep(2)
        by_doc: dict[str, int] = {}
        for rowset in indexed.values():
            by_doc[rowset.doc_id] = by_doc.get(rowset.doc_id, 0) + 1
        for doc_id, (source, chunks) in acknowledged.items():
            assert by_doc.get(doc_id, 0) == chunks, source
    finally:
        observer.close()
    # Whatever the interrupted run did not finish, a re-run completes; nothing is lost or doubled.
    again = subprocess.run(
        [str(Path(sys.executable).parent / "cairn"), "ingest", str(first), str(second), "--collection", name, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    cairn = Cairn(server_settings(stack_env, home, store=settings.store))
    try:
        documents = cairn.documents(collection=name)
        assert len(documents) == 260
        assert cairn.verify(collection=name).clean
        chunk_rows = cairn.index.indexed_chunks(name)
        assert len(chunk_rows) == cairn.index.count(name)  # no duplicate rows
        for n in (0, 19):
            hit = cairn.search(f"compressor unit {n} serviced", collection=name, mode="dense").hits[0]
            assert hit.source.endswith(f"compressor-{n:03d}.md")
    finally:
        cairn.close()


def _live_documents(cairn: Cairn, collection: str) -> dict[str, tuple[str, int]]:
    """doc id → (source, chunks) of the documents live in the collection now, as the shared catalog says."""
    if cairn.catalog.collection(collection) is None:
        return {}
    found = {}
    for doc in cairn.catalog.iter_live_documents(collection):
        version = doc.live_version()
        assert version is not None
        found[doc.doc_id] = (doc.source, version.chunks)
    return found


def test_cairn_demo_runs_on_the_stack_with_the_exported_settings(
    stack: tuple[LocalStack, dict[str, str]], tmp_path: Path
) -> None:
    """What the README documents: `eval "$(cairn stack up)"`, then `cairn demo`, answers from the server."""
    local, exports = stack
    script = (
        f'eval "$({Path(sys.executable).parent / "cairn"} stack up)"\n'
        f"export CAIRN_STORE=s3://cairn/demo-{tmp_path.name}\n"
        f"{Path(sys.executable).parent / 'cairn'} demo --json\n"
    )
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "CAIRN_HOME": str(local.root.parent)}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["ingest"]["ingested"] >= 3
    assert len(result["answers"]) == len(DEMO_QUESTIONS)
    assert all(answer["citations"] for answer in result["answers"])
    from pymilvus import MilvusClient

    admin = MilvusClient(uri=exports["CAIRN_MILVUS_URI"], token=local.root_token())
    assert "cairn_demo" in admin.list_collections()  # the demo ran on the server, not on an embedded engine


def test_a_tls_stack_serves_milvus_only_over_verified_tls(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    local = LocalStack(tmp_path_factory.mktemp("tls-stack"))
    try:
        exports = local.up(tls=True)
        assert exports["CAIRN_MILVUS_URI"].startswith("https://127.0.0.1:")
        ca = Path(exports["CAIRN_MILVUS_TLS_CA"])
        assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
        for name, value in exports.items():
            if name.startswith("AWS_"):
                monkeypatch.setenv(name, value)
        # First (pymilvus reuses a process's connection to the same address): without the CA the server's
        # certificate is not trusted, and in plain text the server does not answer.
        untrusted = server_settings(exports, tmp_path / "no-ca", milvus_tls_ca=None)
        with pytest.raises(EngineError, match="CAIRN_MILVUS_TLS_CA"):
            Cairn(untrusted).index  # noqa: B018 - opening is the test
        plain = server_settings(
            exports, tmp_path / "plain", milvus_uri=exports["CAIRN_MILVUS_URI"].replace("https://", "http://")
        )
        with pytest.raises(EngineError):
            Cairn(plain).index  # noqa: B018 - opening is the test
        cairn = Cairn(server_settings(exports, tmp_path / "ok"))
        cairn._embedder = embedder
        try:
            name = unique("tls")
            cairn.ingest([_write_docs(tmp_path / "docs", 2, "heater")], collection=name)
            assert cairn.search("heater unit 1", collection=name, mode="dense").hits[0].source.endswith("heater-001.md")
        finally:
            cairn.close()
    finally:
        local.down(purge=True)


def test_a_stack_that_cannot_start_says_why_and_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn.stack.local import StackError

    # No `weed` binary beside this interpreter or on PATH: the error names the missing piece and the install.
    monkeypatch.setattr("cairn.stack.seaweed.find_weed", _missing_weed)
    local = LocalStack(tmp_path)
    before = _running_holders()
    with pytest.raises(StackError, match=r"the stack did not start: no `weed` binary"):
        local.up()
    # Nothing it started is left running: the namespace holder it had started (and its host ports) are gone.
    state = local._load()
    assert state is not None
    assert state.network_pid is None
    assert _running_holders() == before


def _running_holders() -> set[int]:
    found = set()
    for process in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "netns.py" in " ".join(process.cmdline()) and process.status() != psutil.STATUS_ZOMBIE:
                found.add(process.pid)
    return found


def _missing_weed() -> Path:
    from cairn.stack.seaweed import SeaweedNotInstalledError

    raise SeaweedNotInstalledError("no `weed` binary beside the interpreter or on PATH; run `make install`")
