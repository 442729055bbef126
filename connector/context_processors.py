from django.conf import settings


def bitrix24(request) -> dict:
    """Bitrix24's JS library for the frame pages (the sandbox serves a stand-in for it)."""
    url = f"{settings.SANDBOX_URL}/bitrix24/js/bx24.js" if settings.SANDBOX_URL else "//api.bitrix24.com/api/v1/"
    return {"bx24_script_url": url}
