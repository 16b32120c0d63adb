"""Answers to the operators' and auditors' questions, read from the ledger and Step Functions.

Every query takes a ``Backend``: a deployed stack (``connect_deployed``) or the saved state
of a local run (``open_local_state``). The command-line tool and the audit report are thin
layers over these functions.
"""
