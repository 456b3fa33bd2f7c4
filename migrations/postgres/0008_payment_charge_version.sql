-- billd schema, version 8: a payment's charge has a version of its own.
--
-- One payments row holds what the payment intent says (status, amount) and what its
-- charge says (the charge id, the refunded amount, when the money moved). Guarded by
-- one version, a payment-intent event newer than a charge event made the charge's
-- write vanish: the row then named no charge (or the failed attempt), so a refund by
-- charge could not find its payment. The charge's columns are now written under
-- (charge_created, charge_ev_created, charge_ev_seq): the latest attempt (by the
-- charge object's own creation time) wins, and of one charge its newest event.
ALTER TABLE payments ADD COLUMN charge_created BIGINT;
ALTER TABLE payments ADD COLUMN charge_ev_created BIGINT;
ALTER TABLE payments ADD COLUMN charge_ev_seq BIGINT;
