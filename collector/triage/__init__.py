"""Alert triage: status, assignment, comments, suppressions, and the alert queries the console
and the API share."""
