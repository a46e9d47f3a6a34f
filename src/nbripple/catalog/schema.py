"""The catalog's tables and their forward migrations.

Each entry of :data:`MIGRATIONS` moves the schema one version forward; the schema
version is kept in the ``meta`` table. Opening a catalog applies the missing
migrations in one transaction; a catalog newer than this code is refused.
"""

from __future__ import annotations

SCHEMA_VERSION_KEY = "schema_version"

_V1 = [
    """
    CREATE TABLE IF NOT EXISTS meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    )
    """,
    """
    CREATE TABLE artifacts (
        name VARCHAR PRIMARY KEY,
        partition_keys VARCHAR NOT NULL,      -- JSON list, declaration order
        time_partitioned BOOLEAN NOT NULL,
        time_granularity VARCHAR NOT NULL,
        kind VARCHAR,
        description VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        latest_version INTEGER NOT NULL       -- versions are numbered from this counter
    )
    """,
    """
    CREATE TABLE versions (
        artifact VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        seq BIGINT NOT NULL,                  -- global commit order
        partitions VARCHAR NOT NULL,          -- canonical JSON object, sorted keys
        time_partition TIMESTAMP,
        kind VARCHAR NOT NULL,
        python_type VARCHAR NOT NULL,
        content_hash VARCHAR NOT NULL,
        size BIGINT NOT NULL,
        uri VARCHAR,
        inline_value VARCHAR,
        table_schema VARCHAR,                 -- JSON list of {name, type}
        num_rows BIGINT,
        meta VARCHAR NOT NULL,                -- JSON object
        execution_id VARCHAR,
        card_type VARCHAR,                    -- current card (history in cards)
        card VARCHAR,
        created_at TIMESTAMP NOT NULL,
        card_revision INTEGER NOT NULL,       -- bumped by every card change
        PRIMARY KEY (artifact, version)
    )
    """,
    """
    CREATE TABLE cards (
        artifact VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        card_type VARCHAR NOT NULL,
        markdown VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (artifact, version, revision)
    )
    """,
    """
    CREATE TABLE executions (
        id VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        notebook VARCHAR,
        notebook_hash VARCHAR,
        parameters VARCHAR NOT NULL,          -- JSON object: the values injected
        requested VARCHAR,                    -- JSON object: what the caller asked for
        cwd VARCHAR,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        error VARCHAR,                        -- JSON object
        output_notebook_hash VARCHAR,
        pid INTEGER,
        host VARCHAR,
        trigger VARCHAR,                      -- JSON object
        trigger_artifact VARCHAR,             -- the version that triggered this run
        trigger_version INTEGER,
        parent_id VARCHAR,
        chain_depth INTEGER NOT NULL,
        label VARCHAR,
        heartbeat_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE consumed (
        execution_id VARCHAR NOT NULL,
        artifact VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        parameter VARCHAR,
        consumed_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE staged_outputs (               -- outputs of running executions
        execution_id VARCHAR NOT NULL,
        ordinal INTEGER NOT NULL,
        payload VARCHAR NOT NULL,             -- JSON of a NewVersion
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (execution_id, ordinal)
    )
    """,
    """
    CREATE TABLE events (
        seq BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,
        artifact VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        execution_id VARCHAR,
        created_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE plans (                        -- every registered version of a plan
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        spec VARCHAR NOT NULL,                -- JSON of the LaunchPlan
        spec_hash VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (name, version)
    )
    """,
    """
    CREATE TABLE plan_state (
        name VARCHAR PRIMARY KEY,
        active BOOLEAN NOT NULL,
        active_version INTEGER NOT NULL,
        activated_at TIMESTAMP,
        activated_seq BIGINT,                 -- events after this seq may fire the plan
        schedule_anchor TIMESTAMP,            -- schedule ticks up to here are handled
        stopped_reason VARCHAR,
        updated_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE firings (                      -- each start a plan is owed, exactly once
        id VARCHAR PRIMARY KEY,
        plan VARCHAR NOT NULL,
        plan_version INTEGER NOT NULL,
        dedup_key VARCHAR NOT NULL,           -- 'v<plan version>:event:<seq>' or 'tick:<iso>'
        kind VARCHAR NOT NULL,                -- artifact | schedule | manual
        event_seq BIGINT,
        trigger_artifact VARCHAR,
        trigger_version INTEGER,
        tick TIMESTAMP,
        chain_depth INTEGER NOT NULL,
        -- status: pending | running | succeeded | failed | skipped | cancelled
        status VARCHAR NOT NULL,
        attempts INTEGER NOT NULL,
        recoveries INTEGER NOT NULL,
        next_attempt_at TIMESTAMP,
        execution_id VARCHAR,
        reason VARCHAR,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        UNIQUE (plan, dedup_key)
    )
    """,
    """
    CREATE TABLE watchers (
        id VARCHAR PRIMARY KEY,
        pid INTEGER NOT NULL,
        host VARCHAR NOT NULL,
        started_at TIMESTAMP NOT NULL,
        heartbeat_at TIMESTAMP NOT NULL,
        stopped_at TIMESTAMP
    )
    """,
    "INSERT INTO meta VALUES ('seq', '0')",
    "INSERT INTO meta VALUES ('content_hash', 'blake3')",
    # Tells a re-created catalog at the same path from the one a process has cached.
    "INSERT INTO meta SELECT 'catalog_id', CAST(uuid() AS VARCHAR)",
    "INSERT INTO meta VALUES ('watch_cursor', '0')",
]

# Version 2: an index on versions.seq, so a version found on narrow columns (query
# resolution, search) is read in full without scanning every row.
_V2 = [
    "CREATE INDEX IF NOT EXISTS versions_seq ON versions (seq)",
]

# heads: the newest version of each artifact per facet — '*' (any), 'kind=<kind>' and
# 'p:<key>=<value>' for each partition value — with its card, so that searches of the
# latest versions read a table whose size does not grow with the number of versions.
_V3 = [
    """
    CREATE TABLE heads (
        artifact VARCHAR NOT NULL,
        facet VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        version INTEGER NOT NULL,
        card_revision INTEGER NOT NULL,
        card VARCHAR,
        PRIMARY KEY (artifact, facet)
    )
    """,
    """
    INSERT INTO heads
    SELECT f.artifact, f.facet, v.seq, v.version, v.card_revision, v.card
    FROM (
        SELECT artifact, facet, max(seq) AS seq FROM (
            SELECT artifact, '*' AS facet, seq FROM versions
            UNION ALL
            SELECT artifact, 'kind=' || kind, seq FROM versions
            UNION ALL
            SELECT v.artifact, 'p:' || j.key || '=' || json_extract_string(v.partitions, j.fullkey),
                   v.seq
            FROM versions v, json_each(v.partitions) j
        ) GROUP BY artifact, facet
    ) f JOIN versions v ON v.seq = f.seq
    """,
]

# Version 4: a watcher's health in its heartbeat — how many passes in a row failed and
# why the last one did — so that `nbripple plans` (and the server) can say a watcher is
# alive but failing.
_V4 = [
    "ALTER TABLE watchers ADD COLUMN consecutive_failures INTEGER DEFAULT 0",
    "ALTER TABLE watchers ADD COLUMN last_error VARCHAR",
    "ALTER TABLE watchers ADD COLUMN last_error_at TIMESTAMP",
]

# Version 5: the requests a served catalog answered, by the client's idempotency key,
# written in the transaction of the write they made: a client that retries after a
# lost answer (or a server killed mid-request) gets the first answer, not a duplicate.
_V5 = [
    """
    CREATE TABLE requests (
        key VARCHAR PRIMARY KEY,
        method VARCHAR NOT NULL,
        result VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    )
    """,
]

# Version 6: the phases of an execution (JSON: phase -> the time it was reached), so
# `nbripple execution ID --timings` and the benchmarks show where a run's time went.
_V6 = [
    "ALTER TABLE executions ADD COLUMN phases VARCHAR",
]

# Version 7: an artifact's newest version number and the global seq are read from the
# heads table (each artifact's '*' row holds its newest version and that version's
# seq; the largest of those seqs is the newest of all) instead of two counters that
# every commit had to update: a commit makes two statements fewer.
_V7 = [
    "ALTER TABLE artifacts DROP COLUMN latest_version",
    "DELETE FROM meta WHERE key = 'seq'",
]

MIGRATIONS: list[list[str]] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7]
SCHEMA_VERSION = len(MIGRATIONS)
