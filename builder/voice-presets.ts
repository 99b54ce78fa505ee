/**
 * VibeVoice-Realtime's official voice presets: upstream's `demo/voices/streaming_model/*.pt` (pickled cached
 * prompt outputs) at the pinned commit, fetched from GitHub's raw file URLs and checked against the git blob
 * sha1 that commit's tree records for each (so any mirror of the same commit verifies too). The builder
 * converts them once into plain tensors (`python -m s2s_tts.voices convert`); nothing is unpickled at run time.
 */
export const VIBEVOICE_COMMIT = 'e73d1e17c3754f046352014856a922f8208fb5d3';
export const VOICE_PRESETS_DIR = 'demo/voices/streaming_model';
export const DEFAULT_VOICE_PRESETS_URL = `https://raw.githubusercontent.com/microsoft/VibeVoice/${VIBEVOICE_COMMIT}/${VOICE_PRESETS_DIR}`;

export interface VoicePreset {
  name: string;
  /** The git blob sha1 of `<name>.pt` in the pinned commit's tree. */
  gitSha1: string;
}

export const VOICE_PRESETS: readonly VoicePreset[] = [
  { name: 'de-Spk0_man', gitSha1: '740731426768eb1902ede9276c9e1f33fb8bd37f' },
  { name: 'de-Spk1_woman', gitSha1: 'c67e669e718639e1d7e451330e3122eb8a0ac071' },
  { name: 'en-Carter_man', gitSha1: '1d795ef667e6641eecb8b22452bb853b089bfdbe' },
  { name: 'en-Davis_man', gitSha1: 'a259516c4d777016dbdc6ed925389cb35f2a6e4b' },
  { name: 'en-Emma_woman', gitSha1: '9876ca31f3fad23cea06ea4b73bfea799c3c747b' },
  { name: 'en-Frank_man', gitSha1: '2c37e82fc01855700bcf1f9389cc6ac11f54d789' },
  { name: 'en-Grace_woman', gitSha1: '366bda87ee88da801999dd649d95f1f685cd63b5' },
  { name: 'en-Mike_man', gitSha1: 'f02ef03fb2c325c2be20c4c3e83b41e0a423b5a4' },
  { name: 'fr-Spk0_man', gitSha1: 'dcc72ffd49bf63b21ad49f895ea5fd8d46327b83' },
  { name: 'fr-Spk1_woman', gitSha1: '48756ff630f80e29949489a46c8cb415249b24d8' },
  { name: 'in-Samuel_man', gitSha1: '9338cb669b22a80f0c0a7ba5f15e7713ce4cf9c9' },
  { name: 'it-Spk0_woman', gitSha1: 'c57fc61f6cec310ca4ad9bd303d8a50e1872d13f' },
  { name: 'it-Spk1_man', gitSha1: '68b658e5a4f9b0010f9b634e041a97dc787e2577' },
  { name: 'jp-Spk0_man', gitSha1: 'bf710af211e9df24bb05f39ab96e7b21a8fc151c' },
  { name: 'jp-Spk1_woman', gitSha1: '4ea2def0b30b5cc61f2179be7fd29cafe85485dd' },
  { name: 'kr-Spk0_woman', gitSha1: '42646663e0d9df5cc0fea69d2fc1e2004b933d1b' },
  { name: 'kr-Spk1_man', gitSha1: 'c0eaafaeccac4d446a32dc2a12acf7bbb43c95d9' },
  { name: 'nl-Spk0_man', gitSha1: 'edeb893336d1dc23e94ce6143350d5f0d0fec951' },
  { name: 'nl-Spk1_woman', gitSha1: '5014702b1a9c0a6c87060c66b160dacff65b69f4' },
  { name: 'pl-Spk0_man', gitSha1: 'f81b24ddd8d4bb00d71615fda399a1e2cf9e6356' },
  { name: 'pl-Spk1_woman', gitSha1: 'a55ed5a5bdcb1b05ca2bc13c35ae226430b1025c' },
  { name: 'pt-Spk0_woman', gitSha1: '0316c77f05f2bdadfb271acc4d8432f99e5b6eea' },
  { name: 'pt-Spk1_man', gitSha1: 'db7ca1b664a5fe8a24c500c5128627853339ac35' },
  { name: 'sp-Spk0_woman', gitSha1: '4b84fa25f8529a93b8486326413ec91e619ad651' },
  { name: 'sp-Spk1_man', gitSha1: 'ec5698ae498246e1fdfc61d3b24bdecadbfb8149' },
];
