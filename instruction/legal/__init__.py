"""The legal pages, public: mentions légales, données personnelles, déclaration d'accessibilité.

Their texts are the admin's (instruction/settings ``legal_texts``, edited on the service identity
page), rendered escaped with a minimal markup (``markup.render``); until an admin writes one, a
French default built from the service's identity and the configuration is shown."""
