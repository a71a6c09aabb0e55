"""The sandbox bank: plays a bank's internet banking (情報リンク entry) and ATM against the commserver.

Mounted at /sandbox-bank/ only when ``settings.PAYEASY_SANDBOX_BANK`` is true (development and demo
installations; never production). No real money moves: payments go over the MPN line like the
simulator's.
"""
