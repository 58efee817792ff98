"""The embedded emulator: moto servers per region, the resources, and the local data plane."""
