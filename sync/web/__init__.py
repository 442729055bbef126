"""The app's pages inside Bitrix24 (server-rendered templates, frame sign-in via accounts.auth)."""
