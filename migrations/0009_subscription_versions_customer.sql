-- billd schema, version 9: one customer's subscription history, read by
-- `GET /stripe/customers/{id}` (its MRR now) and `/stripe/customers/{id}/mrr` (its
-- movements) without walking every customer's.
CREATE INDEX subscription_versions_customer
    ON subscription_versions (customer, ev_created)
    WHERE changed = 1;
