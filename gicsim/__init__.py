"""gicsim: a discrete-event co-simulator of the KVM arm64 vGICv3 ITS and its live migration."""

__version__ = "0.1.0"
