# The enrollment manager's image: gunicorn for the web, the same image for Celery.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# The translation catalogs compiled (Babel: the slim image has no GNU gettext); the .mo files are not in git.
RUN pip install "babel==2.19.0" && python scripts/compile_messages.py
# Static files are collected into the image (served by WhiteNoise); the key is a
# throwaway that exists only for this command.
RUN SECRET_KEY=collectstatic-only DEBUG=0 python manage.py collectstatic --noinput -v0

# Uploads, report files and the mail folder live in /app/var (a volume in compose).
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /app/var/media /app/var/mail \
    && chown -R app:app /app/var
USER app

EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && gunicorn enrollment_site.wsgi --bind 0.0.0.0:8000 --workers 3"]
