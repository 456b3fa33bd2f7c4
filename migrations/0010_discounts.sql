-- billd schema, version 10: discounts, so MRR can be told net of coupons
-- (docs/reports.md, "Discounts").
--
-- Coupons and discounts are mirrored from their events (`coupon.*`,
-- `customer.discount.*`) and from the discount objects old API versions embed in a
-- subscription. Each subscription version records the discounts it carried, in the
-- subscription's order; the reports resolve them at read time, so a discount event
-- arriving after its subscription's event still counts.
CREATE TABLE coupons (
    id                 TEXT PRIMARY KEY,
    -- Hundredths of a percent (25.5 % is 2550): exact, like every amount billd keeps.
    percent_off_bp     INTEGER,
    amount_off         INTEGER,
    currency           TEXT,
    -- forever | repeating | once
    duration           TEXT,
    duration_in_months INTEGER,
    deleted            INTEGER NOT NULL DEFAULT 0,
    raw                TEXT NOT NULL,
    ev_created         INTEGER NOT NULL,
    ev_seq             INTEGER NOT NULL
);

CREATE TABLE discounts (
    id           TEXT PRIMARY KEY,
    coupon       TEXT,
    customer     TEXT,
    subscription TEXT,
    starts_at    INTEGER,
    ends_at      INTEGER,
    deleted      INTEGER NOT NULL DEFAULT 0,
    raw          TEXT NOT NULL,
    ev_created   INTEGER NOT NULL,
    ev_seq       INTEGER NOT NULL
);

-- The discount ids a version carried, space-separated in the subscription's order
-- ('' for none, as every version recorded before this migration).
ALTER TABLE subscription_versions ADD COLUMN discounts TEXT NOT NULL DEFAULT '';

-- "Which version held at time T" (the MRR report) reads the discount ids too: the
-- index that answers it keeps covering the read, as it did before this column.
DROP INDEX subscription_versions_valid;
CREATE INDEX subscription_versions_valid
    ON subscription_versions (valid_to, ev_created, status, ended, currency, subscription, discounts)
    WHERE changed = 1;
