/**
 * Rewrites text into words a TTS voice can say: numbers, money, percentages, units and symbols.
 * VibeVoice does not read digits or symbols reliably, so this runs on every piece before it is sent.
 */
const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const SCALES: [number, string][] = [
  [1e12, 'trillion'],
  [1e9, 'billion'],
  [1e6, 'million'],
  [1e3, 'thousand'],
];

export function integerToWords(n: number): string {
  if (!Number.isSafeInteger(n)) return String(n).split('').map((d) => ONES[Number(d)] ?? d).join(' ');
  if (n < 0) return `minus ${integerToWords(-n)}`;
  if (n < 20) return ONES[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? `-${ONES[n % 10]}` : '');
  if (n < 1000) return `${ONES[Math.floor(n / 100)]} hundred` + (n % 100 ? ` ${integerToWords(n % 100)}` : '');
  for (const [size, name] of SCALES) {
    if (n >= size) return `${integerToWords(Math.floor(n / size))} ${name}` + (n % size ? ` ${integerToWords(n % size)}` : '');
  }
  return String(n);
}

const ORDINAL_WORDS: Record<string, string> = { one: 'first', two: 'second', three: 'third', five: 'fifth', eight: 'eighth', nine: 'ninth', twelve: 'twelfth' };

function ordinal(n: number): string {
  const words = integerToWords(n);
  const match = /([a-z]+)$/.exec(words)!;
  const last = match[1]!;
  const replaced = ORDINAL_WORDS[last] ?? (last.endsWith('y') ? `${last.slice(0, -1)}ieth` : `${last}th`);
  return words.slice(0, match.index) + replaced;
}

/** "1,234.56" -> words; digits after the point are read one by one. */
function numberToWords(text: string): string {
  const [whole, fraction] = text.replace(/,/g, '').split('.');
  const head = integerToWords(Number(whole));
  return fraction ? `${head} point ${fraction.split('').map((d) => ONES[Number(d)]).join(' ')}` : head;
}

/** Years read as people say them: 1999 -> nineteen ninety-nine, 2024 -> twenty twenty-four. */
function yearToWords(year: number): string {
  if (year % 1000 < 10 || (year >= 2000 && year < 2010)) return integerToWords(year);
  const high = Math.floor(year / 100);
  const low = year % 100;
  return `${integerToWords(high)} ${low === 0 ? 'hundred' : low < 10 ? `oh ${ONES[low]}` : integerToWords(low)}`;
}

const UNITS: Record<string, [string, string]> = {
  km: ['kilometer', 'kilometers'],
  m: ['meter', 'meters'],
  cm: ['centimeter', 'centimeters'],
  mm: ['millimeter', 'millimeters'],
  kg: ['kilogram', 'kilograms'],
  g: ['gram', 'grams'],
  mg: ['milligram', 'milligrams'],
  lb: ['pound', 'pounds'],
  lbs: ['pound', 'pounds'],
  mi: ['mile', 'miles'],
  ft: ['foot', 'feet'],
  mph: ['mile per hour', 'miles per hour'],
  'km/h': ['kilometer per hour', 'kilometers per hour'],
  ms: ['millisecond', 'milliseconds'],
  s: ['second', 'seconds'],
  h: ['hour', 'hours'],
  gb: ['gigabyte', 'gigabytes'],
  mb: ['megabyte', 'megabytes'],
  kb: ['kilobyte', 'kilobytes'],
  ghz: ['gigahertz', 'gigahertz'],
  mhz: ['megahertz', 'megahertz'],
  khz: ['kilohertz', 'kilohertz'],
  hz: ['hertz', 'hertz'],
  l: ['liter', 'liters'],
  ml: ['milliliter', 'milliliters'],
};

const CURRENCIES: Record<string, [string, string]> = { $: ['dollar', 'dollars'], '€': ['euro', 'euros'], '£': ['pound', 'pounds'], '¥': ['yen', 'yen'] };

const NUMBER = String.raw`(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)`;

export function toSpeakable(text: string): string {
  return (
    text
      .replace(/’/g, "'")
      // URLs: say the host, not the path and query.
      .replace(/\bhttps?:\/\/([^\s/]+)\S*/gi, (_, host: string) => host.replace(/^www\./, '').split('.').join(' dot '))
      .replace(/\bwww\.([a-z0-9-]+)\.([a-z]{2,})\b/gi, '$1 dot $2')
      // Money: $5, $1,200.50, €3
      .replace(new RegExp(String.raw`([$€£¥])\s?(${NUMBER})`, 'g'), (_, symbol: string, amount: string) => {
        const [singular, plural] = CURRENCIES[symbol]!;
        const [whole, cents] = amount.replace(/,/g, '').split('.');
        const main = `${integerToWords(Number(whole))} ${Number(whole) === 1 ? singular : plural}`;
        if (!cents || /^0+$/.test(cents) || (symbol !== '$' && symbol !== '€')) return main;
        const c = Number(cents.padEnd(2, '0').slice(0, 2));
        return `${main} and ${integerToWords(c)} ${c === 1 ? 'cent' : 'cents'}`;
      })
      .replace(new RegExp(String.raw`(${NUMBER})\s?%`, 'g'), (_, n: string) => `${numberToWords(n)} percent`)
      .replace(new RegExp(String.raw`(-?${NUMBER})\s?°\s?([CF])\b`, 'g'), (_, n: string, scale: string) => `${n.startsWith('-') ? 'minus ' : ''}${numberToWords(n.replace('-', ''))} degrees ${scale === 'C' ? 'Celsius' : 'Fahrenheit'}`)
      .replace(new RegExp(String.raw`(${NUMBER})\s?(km/h|[a-zA-Z]{1,3})\b`, 'g'), (whole, n: string, unit: string) => {
        const names = UNITS[unit.toLowerCase()];
        if (!names) return whole;
        return `${numberToWords(n)} ${Number(n.replace(/,/g, '')) === 1 ? names[0] : names[1]}`;
      })
      .replace(/\b(\d+)(st|nd|rd|th)\b/gi, (_, n: string) => ordinal(Number(n)))
      .replace(/\b(1[1-9]\d\d|20\d\d)\b(?![.,]\d)/g, (_, y: string) => yearToWords(Number(y)))
      .replace(new RegExp(NUMBER, 'g'), (n) => numberToWords(n))
      .replace(/\s*&\s*/g, ' and ')
      .replace(/\s*\+\s*/g, ' plus ')
      .replace(/\s*=\s*/g, ' equals ')
      .replace(/\s*@\s*/g, ' at ')
      .replace(/#(?=\w)/g, 'number ')
      .replace(/[~^\\{}<>|*_#`]/g, ' ')
      .replace(/\s+([.,!?;:])/g, '$1')
      .replace(/\s+/g, ' ')
      .trim()
  );
}
