"""The school card office (卡务): use cases of CardOfficeService.

`issuance` (issue, bulk issue for an intake, replace), `status` (enable, loss, unlock, freeze,
e-card suspend/resume, guardians), `pins` (change, reset), `queries` (a card's view, the audit
log), and `common` (the idempotent, durable run of an action, scope checks, journal rows). The
rules live in `domain/card_lifecycle.py`, `domain/guardian.py` and `domain/audit.py`.
"""
