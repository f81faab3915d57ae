pytest_plugins = ["relay.testing"]
