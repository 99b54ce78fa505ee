/**
 * OpenAI voice names mapped onto VibeVoice presets, so a client's `voice: "alloy"` speaks with a
 * voice of a similar character. VibeVoice preset names work as they are. The table is in README.
 */
export const OPENAI_VOICES: Readonly<Record<string, string>> = {
  alloy: 'en-Emma_woman',
  ash: 'en-Davis_man',
  ballad: 'en-Frank_man',
  coral: 'en-Grace_woman',
  echo: 'en-Mike_man',
  sage: 'en-Grace_woman',
  shimmer: 'en-Emma_woman',
  verse: 'en-Carter_man',
  marin: 'en-Emma_woman',
  cedar: 'en-Carter_man',
};

/**
 * The preset a client's voice name means: itself when it is a preset, its table entry (or the
 * default voice where the table's preset is not installed) when it is an OpenAI name, else null.
 */
export function resolveVoice(name: string, available: readonly string[], defaultVoice: string): string | null {
  if (available.includes(name)) return name;
  const mapped = OPENAI_VOICES[name.toLowerCase()];
  if (mapped === undefined) return null;
  return available.includes(mapped) ? mapped : defaultVoice;
}
