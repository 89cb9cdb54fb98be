-- Criteria sets: drafts can be replaced, published ones never change.
CREATE TABLE criteria_sets (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    level INTEGER NOT NULL,
    years TEXT NOT NULL,
    title TEXT NOT NULL,
    definition_json TEXT NOT NULL,
    definition_toml TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    published_at TEXT,
    PRIMARY KEY (id, version)
);

-- One unit x one year. The unit's facts and its ancestry are those at the
-- end of the year; scope_path ("/38/395/15499/") lets scope queries match
-- by code as of that date.
CREATE TABLE assessments (
    id INTEGER PRIMARY KEY,
    unit_id INTEGER NOT NULL,
    unit_code TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    level INTEGER NOT NULL,
    year INTEGER NOT NULL,
    ancestors TEXT NOT NULL,
    scope_path TEXT NOT NULL,
    criteria_set_id TEXT NOT NULL,
    criteria_set_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL,
    reason TEXT NOT NULL,
    total_points DOUBLE PRECISION NOT NULL,
    max_points DOUBLE PRECISION NOT NULL,
    complete INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (unit_id, year),
    FOREIGN KEY (criteria_set_id, criteria_set_version) REFERENCES criteria_sets (id, version)
);
CREATE INDEX assessments_by_year ON assessments (year, status);
CREATE INDEX assessments_by_code ON assessments (unit_code, year);

CREATE TABLE indicator_values (
    assessment_id INTEGER NOT NULL REFERENCES assessments (id),
    indicator_code TEXT NOT NULL,
    value TEXT NOT NULL,
    evidence_document TEXT NOT NULL,
    evidence_link TEXT NOT NULL,
    evidence_note TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (assessment_id, indicator_code)
);

-- The audit log: who changed what from what to what, and why.
CREATE TABLE history (
    seq INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessments (id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    indicator_code TEXT NOT NULL,
    old_value TEXT NOT NULL,
    new_value TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX history_by_assessment ON history (assessment_id, seq);

-- The outbox. Sequence numbers are allocated under an exclusive lock held
-- to commit, so they are committed in order and readers never skip one.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessments (id),
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- Answers to requests with a request id, for safe retries.
CREATE TABLE requests (
    request_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    method TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (caller, request_id)
);
