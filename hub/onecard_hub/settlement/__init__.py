"""Settlement (issue 5): merchants' days and leaving students' wallets paid to bank accounts, and the
daily reconciliation (对账) against the banks' statements. See hub/README.md."""
