"""The embedded default's email backend: every message in a file and on the console."""

from django.core.mail import get_connection, send_mail


def test_messages_are_written_to_files_and_echoed(settings, tmp_path, capsys):
    settings.EMAIL_FILE_PATH = str(tmp_path)
    connection = get_connection("enrollment_site.lib.mail.FileAndConsoleEmailBackend")
    send_mail("Activate your account", "Open http://127.0.0.1:8000/accounts/confirm-email/abc/", "noreply@localhost",
              ["new@example.com"], connection=connection)
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    assert "confirm-email/abc/" in files[0].read_text()
    out = capsys.readouterr().out
    assert "Subject: Activate your account" in out and "confirm-email/abc/" in out
