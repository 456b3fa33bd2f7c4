-- Each applied subscription event asks for the subscription's newest version and for
-- its version just before the event (src/store/reports.rs). With only the unique
-- (subscription, ev_seq) index SQLite read and sorted every version of the
-- subscription, a cost that grew with its age (renewals add a version a period).
CREATE INDEX subscription_versions_order ON subscription_versions (subscription, ev_created, ev_seq);
