"""One module per user operation: functions of a Repo that return result objects."""
