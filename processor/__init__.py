"""prowtrace: OpenTelemetry traces for Prow jobs, derived statelessly from crier's messages."""

__version__ = "0.1.0"
