-- billd schema, version 16: where an interrupted backfill stops, so running it again
-- continues from there instead of starting over (`billd sync`, `billd events replay
-- --from-stripe`; docs/reliability.md). One row per job while it is unfinished.
CREATE TABLE checkpoints (
    job        TEXT PRIMARY KEY,
    -- The last object id written: the next page starts after it.
    cursor     TEXT NOT NULL,
    -- Objects written so far, for the progress line.
    done       BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
