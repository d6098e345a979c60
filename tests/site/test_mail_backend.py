"""The embedded default's email backend: every message whole in a file, one line on the console."""

from django.core.mail import EmailMessage, get_connection, send_mail


def test_messages_are_written_to_files_and_announced_in_one_line(settings, tmp_path, capsys):
    settings.EMAIL_FILE_PATH = str(tmp_path)
    connection = get_connection("enrollment_site.lib.mail.FileAndConsoleEmailBackend")
    send_mail("Activate your account", "Open http://127.0.0.1:8000/accounts/confirm-email/abc/", "noreply@localhost",
              ["new@example.com"], connection=connection)
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    assert "confirm-email/abc/" in files[0].read_text()
    out = capsys.readouterr().out
    assert out == "email to new@example.com: Activate your account  http://127.0.0.1:8000/accounts/confirm-email/abc/\n"


def test_a_long_message_costs_the_console_one_short_line(settings, tmp_path, capsys):
    settings.EMAIL_FILE_PATH = str(tmp_path)
    body = "Dear learner,\n" + "A long paragraph of course news.\n" * 200 + "\nhttps://example.org/course/\n"
    messages = [EmailMessage("News", body, "noreply@localhost", [f"l{i}@example.com"]) for i in range(20)]
    with get_connection("enrollment_site.lib.mail.FileAndConsoleEmailBackend") as connection:
        assert connection.send_messages(messages) == 20
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 20 and all(len(line) < 120 for line in lines)
    assert lines[3] == "email to l3@example.com: News  https://example.org/course/"
    # The file keeps every message whole.
    saved = "".join(f.read_text() for f in tmp_path.iterdir())
    assert saved.count("A long paragraph of course news.") == 20 * 200
