"""Regional coturn: the configuration file and a loopback launcher for tests."""
