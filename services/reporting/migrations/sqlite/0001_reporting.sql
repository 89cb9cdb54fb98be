-- How far the projection has read the assessment event stream. Updated in
-- the same transaction as the projection, so a crash loses and repeats
-- nothing.
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);

-- The latest state of each assessment, as its last event told it.
CREATE TABLE assessment_state (
    assessment_id INTEGER PRIMARY KEY,
    unit_id INTEGER NOT NULL,
    unit_code TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    level INTEGER NOT NULL,
    year INTEGER NOT NULL,
    status TEXT NOT NULL,
    complete INTEGER NOT NULL,
    total_points DOUBLE PRECISION NOT NULL,
    max_points DOUBLE PRECISION NOT NULL,
    criteria_set_id TEXT NOT NULL,
    criteria_set_version INTEGER NOT NULL,
    event BLOB NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX assessment_state_by_unit ON assessment_state (unit_id, year);
CREATE INDEX assessment_state_by_year ON assessment_state (year, level);

-- Each assessment's indicator results, for breakdowns.
CREATE TABLE indicator_state (
    assessment_id INTEGER NOT NULL REFERENCES assessment_state (assessment_id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    group_code TEXT NOT NULL,
    mandatory INTEGER NOT NULL,
    met INTEGER NOT NULL,
    PRIMARY KEY (assessment_id, code)
);

CREATE TABLE targets (
    id TEXT PRIMARY KEY,
    scope_code TEXT NOT NULL,
    year INTEGER NOT NULL,
    definition BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX targets_by_scope ON targets (scope_code, year);
