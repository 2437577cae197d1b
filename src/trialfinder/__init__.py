"""trialfinder: a self-hostable clinical-trial finder."""
