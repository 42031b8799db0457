-- Outbox fan-out: an alert becomes one delivery per enabled endpoint that asked for its type, in the
-- alert's own transaction. Test events are addressed to one endpoint by the service instead.
CREATE OR REPLACE FUNCTION omnimeter_alert_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.type <> 'webhook.test' THEN
    INSERT INTO webhook_deliveries (alert_id, endpoint_id, subscription_id)
    SELECT NEW.id, e.id, e.subscription_id FROM webhook_endpoints e
    WHERE e.subscription_id = NEW.subscription_id AND e.enabled AND NEW.type = ANY (e.event_types);
  END IF;
  RETURN NULL;
END $$;
