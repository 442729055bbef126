"""A fake Bitrix24 portal and a fake Xero organisation over real HTTP (see ARCHITECTURE.md,
"The sandbox contract"). Run it with `python -m sandbox --port PORT`.
"""
