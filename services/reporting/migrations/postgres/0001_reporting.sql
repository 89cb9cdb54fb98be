-- How far the projection has read the assessment event stream. Updated in
-- the same transaction as the projection, so a crash loses and repeats
-- nothing.
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

-- The latest state of each assessment, as its last event told it.
CREATE TABLE assessment_state (
    assessment_id BIGINT PRIMARY KEY,
    unit_id BIGINT NOT NULL,
    unit_code TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    level BIGINT NOT NULL,
    year BIGINT NOT NULL,
    status TEXT NOT NULL,
    complete BIGINT NOT NULL,
    total_points DOUBLE PRECISION NOT NULL,
    max_points DOUBLE PRECISION NOT NULL,
    criteria_set_id TEXT NOT NULL,
    criteria_set_version BIGINT NOT NULL,
    event BYTEA NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX assessment_state_by_unit ON assessment_state (unit_id, year);
CREATE INDEX assessment_state_by_year ON assessment_state (year, level);

-- Each assessment's indicator results, for breakdowns.
CREATE TABLE indicator_state (
    assessment_id BIGINT NOT NULL REFERENCES assessment_state (assessment_id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    group_code TEXT NOT NULL,
    mandatory BIGINT NOT NULL,
    met BIGINT NOT NULL,
    PRIMARY KEY (assessment_id, code)
);

CREATE TABLE targets (
    id TEXT PRIMARY KEY,
    scope_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    definition BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX targets_by_scope ON targets (scope_code, year);
