/**
 * Emails to persons: Danish by default, English when the person chose it, each ending with the
 * contact block of D13. Pure functions: activities render them from data read in Postgres, so
 * names and addresses never pass through workflow history.
 */
export type Locale = 'da' | 'en';

export const CONTACT_BLOCK: Record<Locale, string> = {
  da: 'TopCall ApS · Axeltorv 8 · 4700 Næstved · Danmark\nkundeservice@topcall.dk · tlf. 48 22 10 00',
  en: 'TopCall ApS · Axeltorv 8 · 4700 Næstved · Denmark\nkundeservice@topcall.dk · phone +45 48 22 10 00',
};

export interface RenderedEmail {
  subject: string;
  text: string;
}

const withContact = (locale: Locale, subject: string, body: string): RenderedEmail => ({
  subject,
  text: `${body.trim()}\n\n--\n${CONTACT_BLOCK[locale]}\n`,
});

const formatDate = (iso: string, locale: Locale) =>
  new Intl.DateTimeFormat(locale === 'da' ? 'da-DK' : 'en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Copenhagen' }).format(new Date(iso));

export const REQUEST_TYPE_NAMES: Record<Locale, Record<string, string>> = {
  da: {
    access: 'indsigt i dine data',
    rectification: 'rettelse af dine data',
    erasure: 'sletning af dine data',
    restriction: 'begrænsning af behandlingen',
    objection: 'indsigelse mod behandlingen',
    marketing_opt_out: 'framelding af markedsføring',
  },
  en: {
    access: 'access to your data',
    rectification: 'correction of your data',
    erasure: 'erasure of your data',
    restriction: 'restriction of processing',
    objection: 'objection to processing',
    marketing_opt_out: 'opting out of marketing',
  },
};

/** The lawful grounds for refusing a request, in words, with their article (D10). */
export const REFUSAL_REASONS: Record<string, Record<Locale, string>> = {
  manifestly_unfounded: { da: 'Anmodningen er åbenbart grundløs (GDPR art. 12, stk. 5).', en: 'The request is manifestly unfounded (GDPR Art. 12(5)).' },
  excessive: { da: 'Anmodningen er overdreven, navnlig fordi den gentager tidligere anmodninger (GDPR art. 12, stk. 5).', en: 'The request is excessive, notably because it repeats earlier requests (GDPR Art. 12(5)).' },
  identity_not_verified: { da: 'Vi har ikke kunnet bekræfte din identitet (GDPR art. 12, stk. 6).', en: 'We could not verify your identity (GDPR Art. 12(6)).' },
  rights_of_others: { da: 'Indsigten ville krænke andres rettigheder og frihedsrettigheder (GDPR art. 15, stk. 4).', en: "Access would adversely affect the rights and freedoms of others (GDPR Art. 15(4))." },
  legal_claims: { da: 'Oplysningerne er nødvendige for at fastlægge, gøre gældende eller forsvare et retskrav (GDPR art. 17, stk. 3, litra e).', en: 'The data is needed to establish, exercise or defend legal claims (GDPR Art. 17(3)(e)).' },
  legal_obligation: { da: 'Vi er retligt forpligtet til at opbevare oplysningerne (GDPR art. 17, stk. 3, litra b).', en: 'We are legally obliged to keep the data (GDPR Art. 17(3)(b)).' },
  compelling_grounds: {
    da: 'Vi har vægtige legitime grunde til behandlingen, der går forud for dine interesser, eller den er nødvendig for et retskrav (GDPR art. 21, stk. 1).',
    en: 'We have compelling legitimate grounds for the processing that override your interests, or it is needed for legal claims (GDPR Art. 21(1)).',
  },
};

/** Datatilsynet, named in every refusal and partial refusal (Art. 12(4), D10). */
export function complaintLines(locale: Locale): string[] {
  return locale === 'da'
    ? ['Er du uenig, kan du klage til Datatilsynet:', 'Datatilsynet, Carl Jacobsens Vej 35, 2500 Valby · dt@datatilsynet.dk · www.datatilsynet.dk']
    : ['If you disagree, you may complain to the Danish Data Protection Agency:', 'Datatilsynet, Carl Jacobsens Vej 35, 2500 Valby, Denmark · dt@datatilsynet.dk · www.datatilsynet.dk'];
}

const VIA: Record<Locale, Record<string, string>> = {
  da: { phone: 'telefonisk', email: 'på e-mail', in_person: 'personligt', web: 'via vores hjemmeside' },
  en: { phone: 'by phone', email: 'by email', in_person: 'in person', web: 'through our website' },
};

/** D2: says truthfully who gave us the data and when — the person themselves, or who did. */
export function invitationEmail(p: {
  locale: Locale;
  name: string;
  link: string;
  providedBy: string;
  providedByKind: string | null;
  providedVia: string | null;
  providedAt: string;
  expiresAt: string;
}): RenderedEmail {
  const self = p.providedByKind === 'self' || (p.providedByKind === null && p.providedBy === 'self');
  const via = p.providedVia ? ` ${VIA[p.locale][p.providedVia] ?? ''}` : '';
  if (p.locale === 'en') {
    return withContact(
      'en',
      'Your TopCall account',
      `Hello ${p.name},\n\nAn account has been created for you at TopCall.\n` +
        (self ? `You gave us your details yourself${via} on ${formatDate(p.providedAt, 'en')}.\n` : `Your details were given to us by ${p.providedBy} on ${formatDate(p.providedAt, 'en')}.\n`) +
        `\nSet your password here (the link works once and expires ${formatDate(p.expiresAt, 'en')}):\n${p.link}\n\n` +
        `You can see, correct, export or delete your data and choose which emails you get in your account settings.`,
    );
  }
  return withContact(
    'da',
    'Din konto hos TopCall',
    `Hej ${p.name}\n\nDer er oprettet en konto til dig hos TopCall.\n` +
      (self ? `Du gav os selv dine oplysninger${via} den ${formatDate(p.providedAt, 'da')}.\n` : `Dine oplysninger blev givet til os af ${p.providedBy} den ${formatDate(p.providedAt, 'da')}.\n`) +
      `\nVælg din adgangskode her (linket virker én gang og udløber ${formatDate(p.expiresAt, 'da')}):\n${p.link}\n\n` +
      `Under dine kontoindstillinger kan du se, rette, eksportere eller slette dine data og vælge hvilke e-mails du får.`,
  );
}

export function acknowledgementEmail(p: { locale: Locale; requestId: string; type: string; dueAt: string }): RenderedEmail {
  const what = REQUEST_TYPE_NAMES[p.locale][p.type] ?? p.type;
  return p.locale === 'en'
    ? withContact('en', `We have received your request (${p.requestId.slice(0, 8)})`, `We have received your request for ${what}.\nWe will answer no later than ${formatDate(p.dueAt, 'en')}.\nReference: ${p.requestId}`)
    : withContact('da', `Vi har modtaget din anmodning (${p.requestId.slice(0, 8)})`, `Vi har modtaget din anmodning om ${what}.\nVi svarer senest ${formatDate(p.dueAt, 'da')}.\nReference: ${p.requestId}`);
}

export function refusalEmail(p: { locale: Locale; requestId: string; type: string; reasonCode: string; reason: string }): RenderedEmail {
  const what = REQUEST_TYPE_NAMES[p.locale][p.type] ?? p.type;
  const ground = REFUSAL_REASONS[p.reasonCode]?.[p.locale] ?? p.reasonCode;
  return p.locale === 'en'
    ? withContact(
        'en',
        `Your request (${p.requestId.slice(0, 8)}) has been refused`,
        `We cannot carry out your request for ${what}.\n\nWhy: ${ground}\n${p.reason}\n\n${complaintLines('en').join('\n')}\nReference: ${p.requestId}`,
      )
    : withContact(
        'da',
        `Din anmodning (${p.requestId.slice(0, 8)}) er afvist`,
        `Vi kan ikke imødekomme din anmodning om ${what}.\n\nBegrundelse: ${ground}\n${p.reason}\n\n${complaintLines('da').join('\n')}\nReference: ${p.requestId}`,
      );
}

/** The answer once a request was carried out; `lines` say what was done, in the person's language. */
export function completionEmail(p: { locale: Locale; requestId: string; type: string; lines: string[] }): RenderedEmail {
  const what = REQUEST_TYPE_NAMES[p.locale][p.type] ?? p.type;
  return p.locale === 'en'
    ? withContact('en', `Your request (${p.requestId.slice(0, 8)}) has been carried out`, `We have carried out your request for ${what}.\n\n${p.lines.join('\n')}\n\nReference: ${p.requestId}`)
    : withContact('da', `Din anmodning (${p.requestId.slice(0, 8)}) er gennemført`, `Vi har gennemført din anmodning om ${what}.\n\n${p.lines.join('\n')}\n\nReference: ${p.requestId}`);
}

/** D12: the notice of a material change, sent before it takes effect. A service email: opt-outs get it too. */
export function policyNoticeEmail(p: { locale: Locale; version: string; summary: string; effectiveAt: string; link: string }): RenderedEmail {
  return p.locale === 'en'
    ? withContact(
        'en',
        `We are changing our privacy policy from ${formatDate(p.effectiveAt, 'en')}`,
        `We are changing TopCall's privacy policy. The new version (${p.version}) takes effect on ${formatDate(p.effectiveAt, 'en')}.\n\n` +
          `What changes:\n${p.summary}\n\nRead the full text: ${p.link}\n\n` +
          `If you keep using our services after that date, the new policy applies. This is a service message about your account; you get it even if you opted out of marketing.`,
      )
    : withContact(
        'da',
        `Vi ændrer vores privatlivspolitik pr. ${formatDate(p.effectiveAt, 'da')}`,
        `Vi ændrer TopCalls privatlivspolitik. Den nye udgave (${p.version}) træder i kraft ${formatDate(p.effectiveAt, 'da')}.\n\n` +
          `Det ændrer sig:\n${p.summary}\n\nLæs hele teksten: ${p.link}\n\n` +
          `Bruger du fortsat vores tjenester efter denne dato, gælder den nye politik. Dette er en servicebesked om din konto; du får den, også selv om du har frameldt markedsføring.`,
      );
}

/** Art. 18(3): the person is told before a restriction of processing is lifted. */
export function restrictionLiftNoticeEmail(p: { locale: Locale; requestId: string }): RenderedEmail {
  return p.locale === 'da'
    ? withContact(
        'da',
        `Begrænsningen af behandlingen ophæves (sag ${p.requestId})`,
        `Du bad os begrænse behandlingen af dine data (sag ${p.requestId}). Vi skriver for at fortælle dig, før det sker, at begrænsningen nu ophæves: dine data bruges igen som beskrevet i vores privatlivspolitik. Du kan svare på denne e-mail.\n\n${complaintLines('da').join('\n')}`,
      )
    : withContact(
        'en',
        `The restriction of processing is being lifted (case ${p.requestId})`,
        `You asked us to restrict the processing of your data (case ${p.requestId}). We are telling you before it happens that the restriction is now being lifted: your data will again be used as our privacy policy describes. You can reply to this email.\n\n${complaintLines('en').join('\n')}`,
      );
}

/** A set-password link the person asked for on the login page (or staff asked for them). */
export function passwordResetEmail(p: { locale: Locale; name: string; link: string; expiresAt: string }): RenderedEmail {
  if (p.locale === 'en') {
    return withContact(
      'en',
      'Choose a new password for your TopCall account',
      `Hello ${p.name},\n\nSomeone, probably you, asked for a new password for your TopCall account.\n\n` +
        `Choose it here (the link works once and expires ${formatDate(p.expiresAt, 'en')}):\n${p.link}\n\n` +
        `If you did not ask, ignore this email: your password stays as it is.`,
    );
  }
  return withContact(
    'da',
    'Vælg en ny adgangskode til din TopCall-konto',
    `Hej ${p.name}\n\nNogen, sikkert dig, har bedt om en ny adgangskode til din TopCall-konto.\n\n` +
      `Vælg den her (linket virker én gang og udløber ${formatDate(p.expiresAt, 'da')}):\n${p.link}\n\n` +
      `Har du ikke bedt om det, så se bort fra denne e-mail: din adgangskode er uændret.`,
  );
}

/** Sent to a new address: it becomes the account's only when the person follows the link. */
export function emailChangeConfirmEmail(p: { locale: Locale; name: string; link: string; expiresAt: string }): RenderedEmail {
  if (p.locale === 'en') {
    return withContact(
      'en',
      'Confirm your new email address at TopCall',
      `Hello ${p.name},\n\nYou asked to use this address for your TopCall account.\n\n` +
        `Confirm it here (the link works once and expires ${formatDate(p.expiresAt, 'en')}):\n${p.link}\n\n` +
        `If you did not ask, ignore this email: nothing changes.`,
    );
  }
  return withContact(
    'da',
    'Bekræft din nye e-mailadresse hos TopCall',
    `Hej ${p.name}\n\nDu har bedt om at bruge denne adresse til din TopCall-konto.\n\n` +
      `Bekræft den her (linket virker én gang og udløber ${formatDate(p.expiresAt, 'da')}):\n${p.link}\n\n` +
      `Har du ikke bedt om det, så se bort fra denne e-mail: intet ændres.`,
  );
}

/** Sent to the current address when someone asks to change it: never names the new one. */
export function emailChangeNoticeEmail(p: { locale: Locale; name: string }): RenderedEmail {
  if (p.locale === 'en') {
    return withContact(
      'en',
      'A new email address was asked for on your TopCall account',
      `Hello ${p.name},\n\nSomeone logged in to your TopCall account asked to change its email address. ` +
        `The change happens only when the link we sent to the new address is followed.\n\n` +
        `If this was not you, change your password and contact us at once.`,
    );
  }
  return withContact(
    'da',
    'Der er bedt om en ny e-mailadresse på din TopCall-konto',
    `Hej ${p.name}\n\nNogen, der er logget ind på din TopCall-konto, har bedt om at skifte kontoens e-mailadresse. ` +
      `Skiftet sker først, når linket, vi har sendt til den nye adresse, bliver fulgt.\n\n` +
      `Var det ikke dig, så skift din adgangskode og kontakt os straks.`,
  );
}

/**
 * Issue 11: someone asked to register an address that already has an account. The person is
 * told who asked and that nothing changed; the asker got the same answer as for a new address,
 * so this email is the only place the attempt shows. `by` is null when the asker is gone.
 */
export function alreadyRegisteredEmail(p: { locale: Locale; name: string; by: { name: string; client: string } | null; at: string; loginLink: string }): RenderedEmail {
  if (p.locale === 'en') {
    const who = p.by ? `${p.by.name}, team lead at ${p.by.client},` : 'A team lead at one of our clients';
    return withContact(
      'en',
      'Someone asked to register your address at TopCall',
      `Hello ${p.name},\n\n${who} asked us on ${formatDate(p.at, 'en')} to create a TopCall account for this email address. ` +
        `You already have an account with it, so nothing was created and nothing about your account changed. We did not tell them that you have an account.\n\n` +
        `Log in here (choose "Forgot your password?" there if you need a new one):\n${p.loginLink}\n\n` +
        `If you do not know why this happened, you can ignore this email or contact us.`,
    );
  }
  const who = p.by ? `${p.by.name}, teamansvarlig hos ${p.by.client},` : 'En teamansvarlig hos en af vores kunder';
  return withContact(
    'da',
    'Nogen har bedt om at registrere din adresse hos TopCall',
    `Hej ${p.name}\n\n${who} bad os den ${formatDate(p.at, 'da')} om at oprette en TopCall-konto til denne e-mailadresse. ` +
      `Du har allerede en konto med den, så der er ikke oprettet noget, og intet ved din konto er ændret. Vi har ikke fortalt dem, at du har en konto.\n\n` +
      `Log ind her (vælg "Glemt din adgangskode?" der, hvis du skal have en ny):\n${p.loginLink}\n\n` +
      `Ved du ikke, hvorfor det skete, kan du se bort fra denne e-mail eller kontakte os.`,
  );
}
