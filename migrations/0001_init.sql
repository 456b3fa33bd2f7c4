-- billd schema, version 1.
--
-- Conventions:
--   * times are unix seconds (UTC) unless the column name ends in _ms;
--   * money is an integer in the currency's minor unit, with a lowercase ISO currency;
--   * every mirror table keeps the raw Stripe JSON of the object (`raw`) and the
--     `created` time and inbox `seq` of the event that last wrote the row
--     (`ev_created`, `ev_seq`): the ordering guard of DESIGN §5.4 compares them.

-- The durable inbox: every verified webhook, exactly once per Stripe event id.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,   -- arrival order
    id              TEXT    NOT NULL UNIQUE,
    type            TEXT    NOT NULL,
    account         TEXT,
    livemode        INTEGER NOT NULL,
    api_version     TEXT,
    created         INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processed', 'failed', 'dead', 'ignored')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    processed_at_ms INTEGER,
    last_error      TEXT
);
-- Workers claim due events in arrival order; only pending/failed rows are in this index.
CREATE INDEX events_due ON events (next_attempt_ms, seq) WHERE status IN ('pending', 'failed');
CREATE INDEX events_status ON events (status, seq);
CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_received ON events (received_at_ms);

CREATE TABLE customers (
    id                     TEXT PRIMARY KEY,
    email                  TEXT,
    name                   TEXT,
    default_payment_method TEXT,
    currency               TEXT,
    deleted                INTEGER NOT NULL DEFAULT 0,
    livemode               INTEGER NOT NULL DEFAULT 0,
    account                TEXT,
    created                INTEGER,
    raw                    TEXT NOT NULL,
    ev_created             INTEGER NOT NULL,
    ev_seq                 INTEGER NOT NULL
);

CREATE TABLE payment_methods (
    id          TEXT PRIMARY KEY,
    customer    TEXT,
    type        TEXT,
    card_brand  TEXT,
    card_last4  TEXT,
    exp_month   INTEGER,
    exp_year    INTEGER,
    created     INTEGER,
    deleted     INTEGER NOT NULL DEFAULT 0,
    raw         TEXT NOT NULL,
    ev_created  INTEGER NOT NULL,
    ev_seq      INTEGER NOT NULL
);
CREATE INDEX payment_methods_customer ON payment_methods (customer);

CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    description TEXT,
    active      INTEGER NOT NULL DEFAULT 1,
    deleted     INTEGER NOT NULL DEFAULT 0,
    created     INTEGER,
    raw         TEXT NOT NULL,
    ev_created  INTEGER NOT NULL,
    ev_seq      INTEGER NOT NULL
);

-- Prices and legacy plans share ids and meaning, so they share a table.
CREATE TABLE prices (
    id             TEXT PRIMARY KEY,
    product        TEXT,
    active         INTEGER NOT NULL DEFAULT 1,
    currency       TEXT,
    unit_amount    INTEGER,
    type           TEXT,
    interval       TEXT,
    interval_count INTEGER,
    nickname       TEXT,
    deleted        INTEGER NOT NULL DEFAULT 0,
    created        INTEGER,
    raw            TEXT NOT NULL,
    ev_created     INTEGER NOT NULL,
    ev_seq         INTEGER NOT NULL
);
CREATE INDEX prices_product ON prices (product);

CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,
    customer             TEXT,
    status               TEXT,
    price                TEXT,      -- the first item's price
    quantity             INTEGER,   -- the first item's quantity
    currency             TEXT,
    current_period_start INTEGER,
    current_period_end   INTEGER,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
    canceled_at          INTEGER,
    ended_at             INTEGER,
    trial_start          INTEGER,
    trial_end            INTEGER,
    start_date           INTEGER,
    created              INTEGER,
    deleted              INTEGER NOT NULL DEFAULT 0,
    account              TEXT,
    raw                  TEXT NOT NULL,
    ev_created           INTEGER NOT NULL,
    ev_seq               INTEGER NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer);
CREATE INDEX subscriptions_status ON subscriptions (status);

-- Replaced as a whole whenever the subscription row is written.
CREATE TABLE subscription_items (
    id             TEXT PRIMARY KEY,
    subscription   TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    price          TEXT,
    quantity       INTEGER,
    unit_amount    INTEGER,
    currency       TEXT,
    interval       TEXT,
    interval_count INTEGER
);
CREATE INDEX subscription_items_subscription ON subscription_items (subscription);

CREATE TABLE invoices (
    id               TEXT PRIMARY KEY,
    customer         TEXT,
    subscription     TEXT,
    status           TEXT,
    number           TEXT,
    currency         TEXT,
    amount_due       INTEGER,
    amount_paid      INTEGER,
    amount_remaining INTEGER,
    total            INTEGER,
    payment_intent   TEXT,
    period_start     INTEGER,
    period_end       INTEGER,
    created          INTEGER,
    deleted          INTEGER NOT NULL DEFAULT 0,
    account          TEXT,
    raw              TEXT NOT NULL,
    ev_created       INTEGER NOT NULL,
    ev_seq           INTEGER NOT NULL
);
CREATE INDEX invoices_customer ON invoices (customer, created);

-- One row per payment: keyed by the payment intent id, or by the charge id for a
-- charge made without a payment intent. Charge and payment-intent events of the same
-- payment write the same row, so a payment is never counted twice.
CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    charge          TEXT,
    customer        TEXT,
    invoice         TEXT,
    amount          INTEGER NOT NULL DEFAULT 0,
    amount_refunded INTEGER NOT NULL DEFAULT 0,
    currency        TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    failure_code    TEXT,
    created         INTEGER NOT NULL,
    livemode        INTEGER NOT NULL DEFAULT 0,
    account         TEXT,
    raw             TEXT NOT NULL,
    ev_created      INTEGER NOT NULL,
    ev_seq          INTEGER NOT NULL
);
CREATE INDEX payments_customer ON payments (customer, created);
CREATE INDEX payments_status_created ON payments (status, created, currency, amount);
CREATE INDEX payments_charge ON payments (charge);

CREATE TABLE refunds (
    id         TEXT PRIMARY KEY,
    payment    TEXT,
    charge     TEXT,
    amount     INTEGER NOT NULL DEFAULT 0,
    currency   TEXT NOT NULL DEFAULT '',
    status     TEXT,
    reason     TEXT,
    created    INTEGER NOT NULL,
    raw        TEXT NOT NULL,
    ev_created INTEGER NOT NULL,
    ev_seq     INTEGER NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment);
CREATE INDEX refunds_created ON refunds (created, currency, amount, status);

CREATE TABLE checkout_sessions (
    id             TEXT PRIMARY KEY,
    mode           TEXT,
    status         TEXT,
    payment_status TEXT,
    customer       TEXT,
    subscription   TEXT,
    payment_intent TEXT,
    amount_total   INTEGER,
    currency       TEXT,
    created        INTEGER,
    raw            TEXT NOT NULL,
    ev_created     INTEGER NOT NULL,
    ev_seq         INTEGER NOT NULL
);

-- Connected accounts (Stripe Connect).
CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    type              TEXT,
    country           TEXT,
    charges_enabled   INTEGER,
    payouts_enabled   INTEGER,
    details_submitted INTEGER,
    currently_due     TEXT,      -- JSON array of requirement names
    disabled_reason   TEXT,
    deleted           INTEGER NOT NULL DEFAULT 0,
    raw               TEXT NOT NULL,
    ev_created        INTEGER NOT NULL,
    ev_seq            INTEGER NOT NULL
);

-- Things a person should follow up: failed payments and risk signals.
CREATE TABLE flags (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL
                CHECK (kind IN ('payment_failed', 'dispute', 'early_fraud_warning', 'review', 'high_risk')),
    object_id   TEXT NOT NULL,
    customer    TEXT,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created     INTEGER NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    resolved_at INTEGER,
    resolved_by TEXT,
    ev_created  INTEGER NOT NULL,
    UNIQUE (kind, object_id)
);
CREATE INDEX flags_status ON flags (status, id);
CREATE INDEX flags_customer ON flags (customer);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    hash         TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the token
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
