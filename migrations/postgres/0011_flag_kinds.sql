-- billd schema, version 11: two more flag kinds (DESIGN §3): payment_action_required
-- (an invoice whose payment needs the customer) and account_restricted (a connected
-- account Stripe disabled, or with requirements past due).
ALTER TABLE flags DROP CONSTRAINT flags_kind_check;
ALTER TABLE flags ADD CONSTRAINT flags_kind_check
    CHECK (kind IN ('payment_failed', 'payment_action_required', 'dispute',
                    'early_fraud_warning', 'review', 'high_risk', 'account_restricted'));
