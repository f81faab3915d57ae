pytest_plugins = ["relay_devkit.testing"]
