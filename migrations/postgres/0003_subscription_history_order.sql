-- PostgreSQL translation of migrations/0003_subscription_history_order.sql.
-- Each applied subscription event asks for the subscription's newest version and for
-- its version just before the event (src/store/reports/history.rs): this index answers
-- both without reading and sorting every version of the subscription.
CREATE INDEX subscription_versions_order ON subscription_versions (subscription, ev_created, ev_seq);
