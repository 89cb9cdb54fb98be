-- A unit is an identity with a lifetime; its facts (code, name, kind,
-- parent) are versions with validity intervals [valid_from, valid_to).
-- Dates are ISO-8601 text; NULL valid_to means "still valid".
CREATE TABLE units (
    id INTEGER PRIMARY KEY,
    valid_from TEXT NOT NULL,
    valid_to TEXT
);

CREATE TABLE unit_versions (
    unit_id INTEGER NOT NULL REFERENCES units (id),
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    level INTEGER NOT NULL,
    parent_id INTEGER REFERENCES units (id),
    PRIMARY KEY (unit_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX unit_versions_by_code ON unit_versions (code, valid_from);
CREATE INDEX unit_versions_by_parent ON unit_versions (parent_id, valid_from);
CREATE INDEX unit_versions_by_level ON unit_versions (level, code);

CREATE TABLE imports (
    id INTEGER PRIMARY KEY,
    request_id TEXT UNIQUE,
    request_hash TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_by TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    response BLOB NOT NULL
);

-- Which provinces each import covered, so imports stay in date order.
CREATE TABLE import_provinces (
    import_id INTEGER NOT NULL REFERENCES imports (id),
    province_code TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    PRIMARY KEY (import_id, province_code)
);
CREATE INDEX import_provinces_by_code ON import_provinces (province_code, effective_date);

CREATE TABLE lineage (
    old_unit_id INTEGER NOT NULL REFERENCES units (id),
    new_unit_id INTEGER NOT NULL REFERENCES units (id),
    effective_date TEXT NOT NULL,
    part TEXT NOT NULL,
    import_id INTEGER NOT NULL REFERENCES imports (id),
    PRIMARY KEY (old_unit_id, new_unit_id)
);
CREATE INDEX lineage_by_new ON lineage (new_unit_id);

-- The change feed. Sequence numbers are allocated under the import lock, so
-- they are committed in order.
CREATE TABLE unit_changes (
    seq INTEGER PRIMARY KEY,
    import_id INTEGER NOT NULL REFERENCES imports (id),
    effective_date TEXT NOT NULL,
    change TEXT NOT NULL,
    unit_id INTEGER NOT NULL REFERENCES units (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent_id INTEGER,
    prev_code TEXT,
    prev_name TEXT,
    prev_kind TEXT,
    prev_parent_id INTEGER,
    related_unit_id INTEGER,
    part TEXT
);
CREATE INDEX unit_changes_by_unit ON unit_changes (unit_id);
