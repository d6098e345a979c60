from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF token authentication with the header ``Authorization: Bearer <token>``
    that integrators' existing clients send."""

    keyword = "Bearer"
