"""The model lifecycle watch: a scheduled Lambda that e-mails the team before a model of the chain dies."""
