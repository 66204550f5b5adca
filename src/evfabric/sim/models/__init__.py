"""Models shipped with evfabric: the car wash, PHOLD and an SIR epidemic on a contact network."""

from evfabric.sim.models.carwash import CarWash, mmc_theory
from evfabric.sim.models.epidemic import Epidemic, final_size_theory
from evfabric.sim.models.phold import Phold

__all__ = ["CarWash", "Epidemic", "Phold", "final_size_theory", "mmc_theory"]
