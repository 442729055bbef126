"""Thin views: verify, call one service, render. bitrix24.py: install, events, frame entry and the
app's pages; xero.py: the Xero connection window."""
