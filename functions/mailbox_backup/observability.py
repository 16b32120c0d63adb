"""The structured logger every function shares (service name comes from the template)."""

from aws_lambda_powertools import Logger

logger = Logger()
