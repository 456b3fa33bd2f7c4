-- billd schema, version 14: refunds and disputes keep the connected account their
-- events came from, as payments, invoices, customers and subscriptions already do,
-- so every report can be asked for one account (docs/connect.md). Rows already
-- mirrored take their payment's account.
ALTER TABLE refunds ADD COLUMN account TEXT;
ALTER TABLE disputes ADD COLUMN account TEXT;
UPDATE refunds SET account = (SELECT p.account FROM payments p WHERE p.id = refunds.payment);
UPDATE disputes SET account = (SELECT p.account FROM payments p
                               WHERE p.id = disputes.payment_intent OR p.charge = disputes.charge
                               LIMIT 1);
