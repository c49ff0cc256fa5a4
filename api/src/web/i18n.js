// The pages' words in English and French. The language is the one the visitor picked (remembered
// in localStorage), else the browser's first English or French preference, else English. Dates and
// numbers follow it through Intl. Hand-written: two languages and some sixty strings do not
// justify a framework, and the pages load no third-party code (CSP 'self').
const STORE = 'epreuve-lang';
export const LANGS = { en: 'English', fr: 'Français' };

const CATALOG = {
  en: {
    'candidate.title': 'Your assessment',
    'candidate.timeLeft': 'Time left',
    'candidate.startNote':
      'The clock starts when you press <strong>Start</strong>. Your sandboxes are ready.',
    'candidate.start': 'Start the assessment',
    'candidate.connect': 'Connect to your sandboxes',
    'candidate.tasks': 'Tasks',
    'candidate.welcome': 'Welcome, {name}.',
    'candidate.noLink': 'Open the link you were sent: it carries your access.',
    'candidate.starting': 'starting…',
    'candidate.copy': 'Copy {label}',
    'candidate.copied': 'Copied',
    'candidate.commandFor': '{label} command for {sandbox}',
    'candidate.points': '{points} pt',
    'candidate.yourAnswer': 'Your answer ({kind})',
    'candidate.kind.pipeline': 'JSON aggregation pipeline',
    'candidate.kind.sql': 'SQL',
    'candidate.kind.text': 'text',
    'candidate.submit': 'Submit',
    'candidate.runChecks': 'Run the checks',
    'candidate.checksNote': 'No answer to type: the checks read what you built in the work schema.',
    'candidate.attemptsLeft': '{left} of {max} attempts left',
    'candidate.attemptsLeftOverall': '{left} of {max} attempts left ({overall} submissions left in all)',
    'candidate.grading': 'Grading…',
    'candidate.passed': 'Passed',
    'candidate.notYet': 'Not yet',
    'candidate.warning': '{minutes} minutes left: submit what you have.',
    'candidate.ended': 'The assessment has ended. Thank you: your answers are with the team.',
    'candidate.yourSubmissions': 'Your submissions',
    'candidate.noSubmissions': 'You submitted no answer from this browser.',
    'candidate.toReview': 'to be reviewed',
    'candidate.language': 'Language',
    // The console (issue 17).
    'console.title': 'Console',
    'console.note':
      'Run SQL or a pipeline on your sandboxes, as your own database user: writes to your work schema are kept, the exercise data is read-only. Nothing here is graded: use Submit under each task.',
    'console.keys':
      'Shortcuts: <kbd>Ctrl</kbd>+<kbd>Enter</kbd> (<kbd>⌘</kbd>+<kbd>Enter</kbd> on a Mac) runs the editor’s text; <kbd>Alt</kbd>+<kbd>↑</kbd> / <kbd>Alt</kbd>+<kbd>↓</kbd> go through your earlier runs; <kbd>Tab</kbd> leaves the editor.',
    'console.editor.sql': 'SQL for {sandbox}',
    'console.editor.pipeline': 'Aggregation pipeline (JSON) for {sandbox}',
    'console.collection': 'Collection',
    'console.run': 'Run',
    'console.runLabel': 'Run on {sandbox}',
    'console.running': 'Running…',
    'console.rows': '{rows} rows in {ms} ms',
    'console.oneRow': '1 row in {ms} ms',
    'console.changed': '{command}: {rows} rows changed in {ms} ms',
    'console.done': '{command} done in {ms} ms',
    'console.truncated': 'only the first {rows} rows are shown',
    'console.caption': 'Result of your last run on {sandbox}',
    'console.results': 'Results on {sandbox}',
    'console.error': 'Error: {message}',
    'console.errorAt': 'Error at line {line}, column {column}: {message}',
    'console.history': 'History ({count})',
    'console.historyNote': 'Your last runs in this tab; choose one to put it back in the editor.',
    'console.restore': 'Restore: {text}',
    'console.noHistory': 'No run yet.',
    'console.null': 'NULL',
    'staff.team': 'Team',
    'staff.token': 'Token or API key',
    'staff.open': 'Open',
    'staff.newAssessment': 'New assessment',
    'staff.template': 'Template',
    'staff.candidateName': 'Candidate name',
    'staff.candidateEmail': 'Candidate email',
    'staff.duration': 'Duration',
    'staff.durationPlaceholder': 'template default',
    'staff.clockStarts': 'Clock starts',
    'staff.onFirstAccess': 'when the candidate opens the link',
    'staff.immediate': 'now',
    'staff.create': 'Create',
    'staff.assessments': 'Assessments',
    'staff.export': 'Export scorecards (CSV)',
    'staff.caption': 'Assessments of the team, refreshed every 5 seconds',
    'staff.col.name': 'Name',
    'staff.col.candidate': 'Candidate',
    'staff.col.template': 'Template',
    'staff.col.phase': 'Phase',
    'staff.col.expires': 'Expires',
    'staff.col.actions': 'Actions',
    'staff.results': 'Results',
    'staff.updated': '(updated {time})',
    'staff.revoked': '(revoked)',
    'staff.notStarted': 'not started',
    'staff.link': 'Link',
    'staff.plusHour': '+1h',
    'staff.revoke': 'Revoke',
    'staff.confirmRevoke': 'Revoke {name}? Its sandboxes are deleted.',
    // hibernation (issue 17)
    'staff.hibernated': '— deleted {time}',
    'staff.reopenedUntil': 'reopened for staff until {time}',
    'staff.reopen': 'Reopen',
    'staff.reopenFor':
      'Reopened {name} for staff until {time} (read-only; the candidate stays refused). Reach each database with:',
    'staff.deleteNow': 'Delete now',
    'staff.confirmDeleteNow': 'Delete the hibernated sandboxes of {name} now? Their data is lost.',
    // end hibernation
    'staff.linkFor': 'Candidate link for {name} (send it privately; it replaces earlier links):',
    'staff.created': 'Created {name}.',
    'staff.resultsFor': 'Results — {candidate} ({name})',
    'staff.scorecard': 'Scorecard',
    'staff.score':
      'Score {earned} / {max} — automatic {autoEarned}/{autoMax}, manual {manualEarned}/{manualMax}{toReview}, interview {interviewEarned}/{interviewMax} — time used {minutes}',
    'staff.toReviewCount': ' ({count} to review)',
    'staff.minutes': '{count} min',
    'staff.submissions': 'Submissions',
    'staff.col.task': 'Task',
    'staff.col.submitted': 'Submitted',
    'staff.col.grade': 'Grade',
    'staff.col.answer': 'Answer',
    'staff.pass': 'pass',
    'staff.fail': 'fail',
    'staff.toReview': 'to review',
    'staff.noSubmission': 'No submission yet.',
    'staff.pointsFor': 'Points for {task} (at most {max})',
    'staff.commentFor': 'Comment for {task}',
    'staff.grade': 'Grade',
    'staff.interview': 'Interview',
    'staff.scored': 'scored {scored}/{questions}',
    'staff.average': ', average {average}',
    'staff.scoreLabel': 'Score',
    'staff.noteFor': 'Note for {question}',
    'staff.save': 'Save',
    'staff.saved': 'Saved',
    'staff.board': 'Results by candidate',
    'staff.refresh': 'Refresh',
    'staff.filter': 'Filter',
    'staff.boardCaption': "Scores of the team's candidates; the column buttons sort",
    'staff.col.score': 'Score',
    'staff.col.progress': 'Tasks passed',
    'staff.col.attempts': 'Attempts',
    'staff.col.left': 'Time left',
    'staff.ended': 'ended',
    'staff.print': 'Print report',
    'staff.timeline': 'Timeline',
    'staff.event.created': 'Created',
    'staff.event.started': 'Clock started',
    'staff.event.submitted': 'Answered {task}: {verdict}',
    'staff.event.ends': 'Ends',
    'staff.event.ended': 'Ended',
    'staff.event.revoked': 'Revoked',
    'staff.similar': 'Answers that look alike',
    'staff.similarNote':
      'A signal to look at, never proof: same task, same template, names and layout ignored.',
    'staff.similarPair': '{task}: {a} and {b} — {percent} % alike',
    'staff.noSimilar': 'None.',
    // Webhooks (docs/webhooks.md)
    'staff.webhooks': 'Webhook deliveries',
    'staff.webhooksNote':
      'Events sent to the team’s endpoint, newest first; the log keeps the latest ones only.',
    'staff.webhooks.event': 'Event',
    'staff.webhooks.subject': 'Subject',
    'staff.webhooks.state': 'State',
    'staff.webhooks.attempts': 'Attempts',
    'staff.webhooks.last': 'Last attempt',
    'staff.webhooks.none': 'No delivery yet (or no endpoint configured for this team).',
    'staff.webhooks.redeliver': 'Redeliver',
    'staff.webhooks.requested': 'Redelivery of {id} requested.',
    'staff.webhooks.state.pending': 'pending',
    'staff.webhooks.state.delivered': 'delivered',
    'staff.webhooks.state.failed': 'failed',
    // Integrity signals (what the gateway saw): neutral words, signals and never verdicts.
    'staff.signals': 'Signals',
    'staff.signalsNote':
      'Signals to look at, never verdicts: a shared network, a second terminal or a database tool explain most of them. Nobody is refused on them. Client addresses are kept in the assessment and deleted with it.',
    'staff.signal.clientAddresses': '{count} client addresses',
    'staff.signal.concurrentSessions': '{count} concurrent sessions',
    'staff.signal.firstAnswerAfter': 'first answer {seconds} s after first connection',
    'staff.signal.dataApiCalls': '{count} data API calls',
    'staff.signal.none': 'Nothing to note.',
    'staff.signal.connections': '{count} connections through the gateway: {sandboxes}',
    'staff.signal.addresses': 'Client addresses: {addresses}',
    'staff.event.firstConnection': 'First connection through the gateway',
  },
  fr: {
    'candidate.title': 'Votre évaluation',
    'candidate.timeLeft': 'Temps restant',
    'candidate.startNote':
      'Le chronomètre démarre quand vous appuyez sur <strong>Commencer</strong>. Vos bacs à sable sont prêts.',
    'candidate.start': 'Commencer l’évaluation',
    'candidate.connect': 'Se connecter à vos bacs à sable',
    'candidate.tasks': 'Exercices',
    'candidate.welcome': 'Bienvenue, {name}.',
    'candidate.noLink': 'Ouvrez le lien que vous avez reçu : il porte votre accès.',
    'candidate.starting': 'démarrage…',
    'candidate.copy': 'Copier {label}',
    'candidate.copied': 'Copié',
    'candidate.commandFor': 'commande {label} pour {sandbox}',
    'candidate.points': '{points} pt',
    'candidate.yourAnswer': 'Votre réponse ({kind})',
    'candidate.kind.pipeline': 'pipeline d’agrégation JSON',
    'candidate.kind.sql': 'SQL',
    'candidate.kind.text': 'texte',
    'candidate.submit': 'Soumettre',
    'candidate.runChecks': 'Lancer les vérifications',
    'candidate.checksNote':
      'Rien à saisir : les vérifications lisent ce que vous avez construit dans le schéma work.',
    'candidate.attemptsLeft': '{left} essais restants sur {max}',
    'candidate.attemptsLeftOverall': '{left} essais restants sur {max} ({overall} envois restants en tout)',
    'candidate.grading': 'Correction…',
    'candidate.passed': 'Réussi',
    'candidate.notYet': 'Pas encore',
    'candidate.warning': 'Plus que {minutes} minutes : soumettez ce que vous avez.',
    'candidate.ended': 'L’évaluation est terminée. Merci : vos réponses sont transmises à l’équipe.',
    'candidate.yourSubmissions': 'Vos soumissions',
    'candidate.noSubmissions': 'Vous n’avez soumis aucune réponse depuis ce navigateur.',
    'candidate.toReview': 'à relire',
    'candidate.language': 'Langue',
    // La console (issue 17).
    'console.title': 'Console',
    'console.note':
      'Exécutez du SQL ou un pipeline sur vos bacs à sable, avec votre propre utilisateur : ce que vous écrivez dans votre schéma work est gardé, les données de l’exercice sont en lecture seule. Rien ici n’est noté : utilisez Soumettre sous chaque exercice.',
    'console.keys':
      'Raccourcis : <kbd>Ctrl</kbd>+<kbd>Entrée</kbd> (<kbd>⌘</kbd>+<kbd>Entrée</kbd> sur Mac) exécute le texte de l’éditeur ; <kbd>Alt</kbd>+<kbd>↑</kbd> / <kbd>Alt</kbd>+<kbd>↓</kbd> parcourent vos exécutions précédentes ; <kbd>Tab</kbd> quitte l’éditeur.',
    'console.editor.sql': 'SQL pour {sandbox}',
    'console.editor.pipeline': 'Pipeline d’agrégation (JSON) pour {sandbox}',
    'console.collection': 'Collection',
    'console.run': 'Exécuter',
    'console.runLabel': 'Exécuter sur {sandbox}',
    'console.running': 'Exécution…',
    'console.rows': '{rows} lignes en {ms} ms',
    'console.oneRow': '1 ligne en {ms} ms',
    'console.changed': '{command} : {rows} lignes modifiées en {ms} ms',
    'console.done': '{command} terminé en {ms} ms',
    'console.truncated': 'seules les {rows} premières lignes sont affichées',
    'console.caption': 'Résultat de votre dernière exécution sur {sandbox}',
    'console.results': 'Résultats sur {sandbox}',
    'console.error': 'Erreur : {message}',
    'console.errorAt': 'Erreur ligne {line}, colonne {column} : {message}',
    'console.history': 'Historique ({count})',
    'console.historyNote':
      'Vos dernières exécutions dans cet onglet ; choisissez-en une pour la remettre dans l’éditeur.',
    'console.restore': 'Reprendre : {text}',
    'console.noHistory': 'Aucune exécution pour l’instant.',
    'console.null': 'NULL',
    'staff.team': 'Équipe',
    'staff.token': 'Jeton ou clé d’API',
    'staff.open': 'Ouvrir',
    'staff.newAssessment': 'Nouvelle évaluation',
    'staff.template': 'Modèle',
    'staff.candidateName': 'Nom du candidat',
    'staff.candidateEmail': 'E-mail du candidat',
    'staff.duration': 'Durée',
    'staff.durationPlaceholder': 'durée du modèle',
    'staff.clockStarts': 'Le chronomètre démarre',
    'staff.onFirstAccess': 'quand le candidat ouvre le lien',
    'staff.immediate': 'maintenant',
    'staff.create': 'Créer',
    'staff.assessments': 'Évaluations',
    'staff.export': 'Exporter les résultats (CSV)',
    'staff.caption': 'Évaluations de l’équipe, actualisées toutes les 5 secondes',
    'staff.col.name': 'Nom',
    'staff.col.candidate': 'Candidat',
    'staff.col.template': 'Modèle',
    'staff.col.phase': 'Phase',
    'staff.col.expires': 'Fin',
    'staff.col.actions': 'Actions',
    'staff.results': 'Résultats',
    'staff.updated': '(mis à jour à {time})',
    'staff.revoked': '(révoquée)',
    'staff.notStarted': 'pas commencée',
    'staff.link': 'Lien',
    'staff.plusHour': '+1 h',
    'staff.revoke': 'Révoquer',
    'staff.confirmRevoke': 'Révoquer {name} ? Ses bacs à sable sont supprimés.',
    // hibernation (issue 17)
    'staff.hibernated': '— supprimée {time}',
    'staff.reopenedUntil': 'rouverte pour l’équipe jusqu’à {time}',
    'staff.reopen': 'Rouvrir',
    'staff.reopenFor':
      '{name} rouverte pour l’équipe jusqu’à {time} (lecture seule ; le candidat reste refusé). Accès à chaque base :',
    'staff.deleteNow': 'Supprimer maintenant',
    'staff.confirmDeleteNow':
      'Supprimer maintenant les bacs à sable en veille de {name} ? Leurs données sont perdues.',
    // end hibernation
    'staff.linkFor': 'Lien candidat pour {name} (à envoyer en privé ; il remplace les liens précédents) :',
    'staff.created': '{name} créée.',
    'staff.resultsFor': 'Résultats — {candidate} ({name})',
    'staff.scorecard': 'Bilan',
    'staff.score':
      'Score {earned} / {max} — automatique {autoEarned}/{autoMax}, manuel {manualEarned}/{manualMax}{toReview}, entretien {interviewEarned}/{interviewMax} — temps utilisé {minutes}',
    'staff.toReviewCount': ' ({count} à relire)',
    'staff.minutes': '{count} min',
    'staff.submissions': 'Soumissions',
    'staff.col.task': 'Exercice',
    'staff.col.submitted': 'Soumise le',
    'staff.col.grade': 'Note',
    'staff.col.answer': 'Réponse',
    'staff.pass': 'réussi',
    'staff.fail': 'échoué',
    'staff.toReview': 'à relire',
    'staff.noSubmission': 'Aucune soumission pour l’instant.',
    'staff.pointsFor': 'Points pour {task} (au plus {max})',
    'staff.commentFor': 'Commentaire pour {task}',
    'staff.grade': 'Noter',
    'staff.interview': 'Entretien',
    'staff.scored': '{scored}/{questions} notées',
    'staff.average': ', moyenne {average}',
    'staff.scoreLabel': 'Note',
    'staff.noteFor': 'Remarque pour {question}',
    'staff.save': 'Enregistrer',
    'staff.saved': 'Enregistré',
    'staff.board': 'Résultats par candidat',
    'staff.refresh': 'Actualiser',
    'staff.filter': 'Filtrer',
    'staff.boardCaption': 'Scores des candidats de l’équipe ; les boutons des colonnes trient',
    'staff.col.score': 'Score',
    'staff.col.progress': 'Exercices réussis',
    'staff.col.attempts': 'Essais',
    'staff.col.left': 'Temps restant',
    'staff.ended': 'terminée',
    'staff.print': 'Imprimer le rapport',
    'staff.timeline': 'Chronologie',
    'staff.event.created': 'Créée',
    'staff.event.started': 'Chronomètre démarré',
    'staff.event.submitted': 'Réponse à {task} : {verdict}',
    'staff.event.ends': 'Fin prévue',
    'staff.event.ended': 'Terminée',
    'staff.event.revoked': 'Révoquée',
    'staff.similar': 'Réponses qui se ressemblent',
    'staff.similarNote':
      'Un signal à examiner, jamais une preuve : même exercice, même modèle, noms et mise en forme ignorés.',
    'staff.similarPair': '{task} : {a} et {b} — {percent} % de ressemblance',
    'staff.noSimilar': 'Aucune.',
    // Webhooks (docs/webhooks.md)
    'staff.webhooks': 'Envois de webhooks',
    'staff.webhooksNote':
      'Événements envoyés au point d’accès de l’équipe, du plus récent au plus ancien ; le journal ne garde que les derniers.',
    'staff.webhooks.event': 'Événement',
    'staff.webhooks.subject': 'Objet',
    'staff.webhooks.state': 'État',
    'staff.webhooks.attempts': 'Tentatives',
    'staff.webhooks.last': 'Dernière tentative',
    'staff.webhooks.none': 'Aucun envoi pour l’instant (ou aucun point d’accès configuré pour cette équipe).',
    'staff.webhooks.redeliver': 'Renvoyer',
    'staff.webhooks.requested': 'Renvoi de {id} demandé.',
    'staff.webhooks.state.pending': 'en attente',
    'staff.webhooks.state.delivered': 'remis',
    'staff.webhooks.state.failed': 'échec',
    'staff.signals': 'Signaux',
    'staff.signalsNote':
      'Des signaux à examiner, jamais des verdicts : un réseau partagé, un second terminal ou un outil de base de données expliquent la plupart. Personne n’est refusé sur cette base. Les adresses des clients sont conservées dans l’évaluation et supprimées avec elle.',
    'staff.signal.clientAddresses': '{count} adresses client',
    'staff.signal.concurrentSessions': '{count} sessions simultanées',
    'staff.signal.firstAnswerAfter': 'première réponse {seconds} s après la première connexion',
    'staff.signal.dataApiCalls': '{count} appels à l’API de données',
    'staff.signal.none': 'Rien à signaler.',
    'staff.signal.connections': '{count} connexions par la passerelle : {sandboxes}',
    'staff.signal.addresses': 'Adresses des clients : {addresses}',
    'staff.event.firstConnection': 'Première connexion par la passerelle',
  },
};

function pick() {
  const stored = localStorage.getItem(STORE);
  if (stored && stored in LANGS) return stored;
  for (const l of navigator.languages ?? [navigator.language ?? 'en']) {
    const base = l.slice(0, 2).toLowerCase();
    if (base in LANGS) return base;
  }
  return 'en';
}

export const lang = pick();

/** The string `key` in the page's language, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = CATALOG[lang][key] ?? CATALOG.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

const dateTime = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' });
const time = new Intl.DateTimeFormat(lang, { timeStyle: 'medium' });
const number = new Intl.NumberFormat(lang);
export const format = {
  dateTime: (d) => dateTime.format(new Date(d)),
  time: (d) => time.format(new Date(d)),
  number: (n) => number.format(n),
};

/**
 * Translates the page's static text: `data-i18n` (text), `data-i18n-html` (trusted catalogue
 * markup), `data-i18n-placeholder`, `data-i18n-aria-label`; and adds the language switch.
 */
export function translatePage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-html]')) el.innerHTML = t(el.dataset.i18nHtml);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]'))
    el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-aria-label]'))
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  const select = document.getElementById('lang');
  if (select) {
    select.replaceChildren(...Object.entries(LANGS).map(([code, name]) => new Option(name, code)));
    select.value = lang;
    select.addEventListener('change', () => {
      localStorage.setItem(STORE, select.value);
      location.reload(); // the session lives in sessionStorage: nothing is lost
    });
  }
}
