"""The thresholds of the traffic analyses, in one place (all configurable; defaults from the
sources named beside them, see docs/analytics.md "Traffic")."""

from __future__ import annotations

from dataclasses import dataclass, field

HKT_OFFSET_S = 8 * 3600  # Hong Kong time (no daylight saving)


@dataclass(frozen=True)
class HealthConfig:
    """PeMS daily detector diagnostics (Chen, Kwon, Skabardonis, Varaiya, TRB 2003): counts of
    30-second samples over a day's window; the first test that fails names the status."""

    window_start_h: float = 5.0  # 05:00 Hong Kong time
    window_end_h: float = 22.0  # 22:00
    period_s: int = 30
    min_fraction: float = 0.6  # insufficient data below 60% of the expected samples
    card_off_samples: int = 1200  # samples with nothing detected (occupancy 0 and volume 0)
    high_occupancy: float = 35.0  # percent: a sample above it is a high value...
    high_volume: int = 20  # ...or above this many vehicles per lane in 30 s (2,400 veh/h)
    high_val_samples: int = 200
    intermittent_samples: int = 50  # samples with occupancy > 0 but no vehicle counted
    # The paper's entropy test was for fine-grained occupancy; TD reports whole percents, so a
    # working lane still shows several bits. Below this the occupancy is (nearly) constant.
    constant_entropy_bits: float = 1.0

    @property
    def expected_samples(self) -> int:
        return round((self.window_end_h - self.window_start_h) * 3600 / self.period_s)


@dataclass(frozen=True)
class ImputeConfig:
    history_days: int = 28  # good history used to fit the neighbour relations
    min_points: int = 24  # 5-minute pairs needed for a fit (two hours)
    wider_hops: int = 3  # "wider" neighbours: up to this many stations along the road


@dataclass(frozen=True)
class MeasuresConfig:
    delay_thresholds_kmh: tuple[float, ...] = (40.0, 60.0)  # delay below each speed
    congested_below_kmh: float = 40.0
    free_flow_kmh: float = 70.0  # when the location list gives none
    default_length_km: float = 0.5  # road length a detector stands for, when unknown


@dataclass(frozen=True)
class BottleneckConfig:
    """PeMS bottleneck rule (Chen, Skabardonis, Varaiya 2004): upstream slower than 40 mph, the
    downstream detector 20 mph faster, less than 3 miles apart, in 5 of 7 five-minute slots."""

    max_upstream_kmh: float = 64.0
    min_drop_kmh: float = 32.0
    max_distance_km: float = 4.8
    window: int = 7
    min_hits: int = 5


@dataclass(frozen=True)
class TrafficConfig:
    health: HealthConfig = field(default_factory=HealthConfig)
    impute: ImputeConfig = field(default_factory=ImputeConfig)
    measures: MeasuresConfig = field(default_factory=MeasuresConfig)
    bottleneck: BottleneckConfig = field(default_factory=BottleneckConfig)
