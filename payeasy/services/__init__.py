"""Writes of the payeasy app, one module per concept: contracts and onboarding (contracts), the
情報リンク hand-off (handoff), applying payments (payments), teller batch files (teller), webhook
endpoints (webhook_endpoints) and their deliveries (webhooks). Import from the modules themselves."""
