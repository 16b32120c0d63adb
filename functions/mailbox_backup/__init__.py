"""Lambda handlers and domain logic for the nightly WorkMail mailbox backup."""
