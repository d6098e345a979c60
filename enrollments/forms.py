import csv

from django import forms
from django.conf import settings

from enrollment_site.lib.identifiers import count_tokens, tokens_from_csv_text

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class BatchEnrollmentForm(forms.Form):
    identifiers = forms.CharField(
        label="Usernames or emails",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "learner1, jane@example.com\nbob@example.org"}),
        help_text="Separate with commas, spaces or new lines. Duplicates and case variants count once.",
    )
    file = forms.FileField(
        label="…or upload a CSV or text file of emails",
        required=False,
        help_text="UTF-8 text; every cell is read as an identifier. Files always run in the background.",
    )
    auto_enroll = forms.BooleanField(
        label="Auto enroll", required=False, initial=True,
        help_text="People without an account are enrolled as soon as they register and activate with that address.",
    )
    email_students = forms.BooleanField(label="Notify people by email", required=False, initial=True)
    reason = forms.CharField(label="Reason (optional, kept in the audit trail)", required=False, max_length=500)
    action = forms.ChoiceField(choices=[("enroll", "Enroll"), ("unenroll", "Unenroll")], widget=forms.HiddenInput)

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if not upload:
            return None
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        raw = upload.read()
        if b"\x00" in raw:
            raise forms.ValidationError("This is not a text file (it contains NUL bytes). Upload a UTF-8 CSV or text file.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not valid UTF-8 text. Save it as UTF-8 CSV and upload it again.") from None
        try:
            return tokens_from_csv_text(text)
        except csv.Error as exc:
            raise forms.ValidationError(f"The file is not well-formed CSV ({exc}).") from None

    def clean(self):
        data = super().clean()
        text = data.get("identifiers") or ""
        file_tokens = data.get("file") or []
        if not text.strip() and not file_tokens and not self.errors:
            raise forms.ValidationError("Enter at least one username or email, or upload a file.")
        cap = settings.ENROLLMENT_MAX_IDENTIFIERS
        count = count_tokens(text) + len(file_tokens)
        if count > cap:
            raise forms.ValidationError(
                f"That is {count:,} identifiers; one batch may hold at most {cap:,}. Split the list; nothing was changed."
            )
        data["token_count"] = count
        return data
